"""What every kmnist command does alike: quiet TensorFlow, absl flags, and a KmnistError as one
line with exit 2."""

import contextlib
import dataclasses
import os
import sys
import typing

from absl import app, flags, logging

from kmnist.training.config import TrainConfig
from kmnist.util import console, disk, settings
from kmnist.util.errors import KmnistError


def define_config_flags(fv: flags.FlagValues, names=None) -> None:
  """A flag for each TrainConfig field (or those in `names`): its name, default, help and choices.

  The flag's kind follows the field's type; a setting the model's schedule decides (None by
  default) says so in its help.
  """
  for field in dataclasses.fields(TrainConfig):
    if names is not None and field.name not in names:
      continue
    meta = field.metadata
    help_text = meta["help"]() if callable(meta["help"]) else meta["help"]
    if meta["per_model"]:
      help_text = f"{help_text}; default: the model's (see --model)."
    kinds = {bool: "boolean", int: "integer", float: "float", tuple: "list"}
    base = next(t for t in (bool, int, float, tuple, str) if _is(field.type, t))
    choices = settings.choices_of(field)
    kind, extra = (
      ("enum", {"enum_values": list(choices)}) if choices else (kinds.get(base, "string"), {})
    )
    default = ",".join(field.default) if base is tuple else field.default
    getattr(flags, f"DEFINE_{kind}")(field.name, default, help=help_text, flag_values=fv, **extra)


def _is(annotation, kind) -> bool:
  """Whether a field's type is `kind`, or `kind | None`, or `kind[...]`."""
  return kind in (typing.get_origin(annotation), annotation, *typing.get_args(annotation))


def config_from_flags(fv: flags.FlagValues) -> TrainConfig:
  """The TrainConfig the command line asks for (fields without a flag keep their defaults)."""
  values = {f.name: fv[f.name].value for f in dataclasses.fields(TrainConfig) if f.name in fv}
  return TrainConfig(**{name: tuple(v) if isinstance(v, list) else v for name, v in values.items()})


@contextlib.contextmanager
def without_pandas():
  """Keras imports pandas, if installed, only to accept DataFrames, which kmnist never passes: a
  third of a second of every command's start-up (the serve and test extras install it). Imports
  inside run as if it were absent; afterwards pandas imports again for whoever needs it."""
  hidden = "pandas" not in sys.modules
  if hidden:
    sys.modules["pandas"] = None  # makes `import pandas` raise ImportError
  try:
    yield
  finally:
    if hidden:
      del sys.modules["pandas"]


def run_command(name: str, define_flags, main) -> None:
  """Defines the command's flags, then runs `main(argv)` under absl; it returns the exit code."""
  # Before TensorFlow loads: hide its C++ start-up chatter.
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  define_flags()

  def main_reporting_errors(argv):
    if not flags.FLAGS["verbosity"].present:
      # TensorFlow logs a page of INFO lines on export, and its C++ prints lines that are not for
      # the user (kmnist.util.console); -v 0 brings them all back.
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
