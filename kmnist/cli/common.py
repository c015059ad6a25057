"""What every kmnist command does alike: quiet TensorFlow, absl flags, and a KmnistError as one
line with exit 2."""

import os
import sys

from absl import app, flags, logging

from kmnist import console, disk
from kmnist.config import DEFAULT_DATA_DIR
from kmnist.errors import KmnistError


def define_data_flags(fv: flags.FlagValues) -> None:
  """--data_dir and --manual_dir, for every command that reads MNIST."""
  flags.DEFINE_string(
    "data_dir",
    DEFAULT_DATA_DIR,
    "TFDS data directory (prepared `mnist` is kept here).",
    flag_values=fv,
  )
  flags.DEFINE_string(
    "manual_dir",
    None,
    "Directory with the four original MNIST .gz files; default: the copies shipped with kmnist.",
    flag_values=fv,
  )


def run_command(name: str, define_flags, main) -> None:
  """Defines the command's flags, then runs `main(argv)` under absl; it returns the exit code."""
  # Before TensorFlow loads: hide its C++ start-up chatter.
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  define_flags()

  def main_reporting_errors(argv):
    if not flags.FLAGS["verbosity"].present:
      # TensorFlow logs a page of INFO lines on export, and its C++ prints lines that are not for
      # the user (kmnist.console); -v 0 brings them all back.
      logging.set_verbosity(logging.WARNING)
      console.quiet_stderr()
    try:
      return main(argv)
    except KmnistError as e:
      print(f"{name}: error: {e}", file=sys.stderr)
      return 2
    except KeyboardInterrupt:
      print(
        f"{name}: interrupted; what was written is whole, and the same command goes on from "
        "there (kmnist-train from its last checkpoint)",
        file=sys.stderr,
      )
      return 130  # the shell's code for Ctrl-C
    except Exception as e:
      # A write the disk refused somewhere no writer names its path (a library's cache, TMPDIR).
      error = disk.explain(e)
      if error is None:
        raise
      print(f"{name}: error: {error}", file=sys.stderr)
      return 2

  app.run(main_reporting_errors)
