"""A quiet console: the lines TensorFlow's and LiteRT's C++ print that are not for the user are held
back, and everything else reaches stderr at once and in full.

Some lines reach stderr with no switch to turn them off: TensorFlow's start-up lines, written before
absl's InitializeLog and so regardless of TF_CPP_MIN_LOG_LEVEL (oneDNN, "Could not find cuda
drivers"), among them an E-level "failed call to cuInit" on every machine without a GPU driver; the
TFLite converter's `fully_quantize: ...` and LiteRT's "INFO: Created TensorFlow Lite XNNPACK
delegate for CPU.". So a command routes its file descriptor 2 through a filter that drops exactly
those lines (QUIET, matched whole) and copies every other byte as it comes.

The filter is a separate process, not a thread: when the command dies (abort, a segfault, a kill)
the filter still drains the pipe, so the last lines, the ones that say why, are shown.
"""

import atexit
import contextlib
import os
import subprocess
import sys
import time

PREFIX = r"[IWEF]\d{4} [\d:.]+ +\d+ "  # absl's C++ log line prefix: level, date, time, thread
QUIET = (
  r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
  PREFIX + r"port\.cc:\d+\] oneDNN custom operations are on\. .*",
  PREFIX + r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized to use available .*",
  r"To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler "
  r"flags\.",
  PREFIX + r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine, GPU will not be "
  r"used\.",
  r"fully_quantize: \d+, inference_type: \d+, input_inference_type: \w+, "
  r"output_inference_type: \w+",
  r"INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.",
  # Ray Train's placement-group cleaner, an actor of Ray's own housekeeping: it asks Ray's state
  # API every few seconds, which a Ray without its dashboard (ray[default], which kmnist's ray extra
  # leaves out) does not serve, and its thread can die with a traceback when a local Ray stops under
  # it (Ray 2.60 catches only the state API's own error there; ray-project/ray#65447).
  r"(?:\x1b\[\d+m)?\(PlacementGroupCleaner pid=\d+(?:, ip=[^)]+)?\)(?:\x1b\[0m)? .*",
)
# Ray shows its actors' lines on the driver behind the actor's name, "(RayTrainWorker pid=7) "
# (", ip=..." on another node; coloured), and a line several printed alike once more, with
# " [repeated 3x across cluster]" (the first time with a note on that): each line above is held
# back in those forms too.
RAY_ACTOR = r"(?:(?:\x1b\[\d+m)?\(\w+ pid=\d+(?:, ip=[^)]+)?\)(?:\x1b\[0m)? )?"
RAY_REPEATED = (
  r"(?:(?:\x1b\[\d+m)? \[repeated \d+x across cluster\]"
  r"(?: \(Ray deduplicates logs by default\..*\))?(?:\x1b\[0m)?)?"
)
# On a machine without a GPU driver (TensorFlow has said so) cuInit fails as it must; with a driver
# the same failure is a real problem, and is shown.
NO_DRIVER = QUIET[4]
CUINIT_FAILED = PREFIX + r"cuda_\w+\.cc:\d+\] failed call to cuInit: .*"
IDLE_S = 0.05  # a line without its end yet (a prompt, a progress bar) is shown after this pause
FILTER_MODULE = "kmnist.util.console_filter"  # the filter's program: the standard library only

_installed = []
_terminal = []  # whether fd 2 was a terminal before the filter took it over


def quiet_stderr() -> None:
  """Routes this process's stderr (fd 2, C++ included) through the filter, until exit. Once."""
  if _installed or os.environ.get("KMNIST_RAW_STDERR"):
    return
  _terminal.append(os.isatty(2))
  quiet = "|".join(as_printed(pattern) for pattern in QUIET)
  sys.stderr.flush()
  read_end, write_end = os.pipe()
  try:
    filter_process = subprocess.Popen(
      [
        *(sys.executable, "-m", FILTER_MODULE, quiet),
        *(as_printed(NO_DRIVER), as_printed(CUINIT_FAILED), str(IDLE_S)),
      ],
      stdin=read_end,
      stdout=2,  # the user's stderr, as it is before the filter takes fd 2 over
    )
  except OSError:
    os.close(read_end)
    os.close(write_end)
    return  # no filter: the console stays as it was
  os.close(read_end)
  original = os.dup(2)
  os.dup2(write_end, 2)
  os.close(write_end)
  _installed.append(filter_process)

  def restore():
    sys.stderr.flush()
    os.dup2(original, 2)  # closes the pipe's last writer here: the filter drains and ends
    # A child of the command may still hold the pipe: then the filter ends with it.
    with contextlib.suppress(subprocess.TimeoutExpired):
      filter_process.wait(timeout=5)

  atexit.register(restore)


def as_printed(pattern: str) -> str:
  """A line's pattern, as the line prints itself or as Ray prints it for one of its actors."""
  return f"{RAY_ACTOR}(?:{pattern}){RAY_REPEATED}"


class Progress:
  """One line that counts up in place on a terminal (a start and an end line elsewhere)."""

  def __init__(self, label: str, total: int, stream=None, tty: bool | None = None):
    self.label, self.total, self.stream = label, total, stream or sys.stderr
    self.tty = stderr_is_terminal() if tty is None else tty
    self.shown_at = 0.0
    self.stream.write(f"{label}...")
    self.stream.write("" if self.tty else "\n")
    self.stream.flush()

  def update(self, done: int) -> None:
    if self.tty and time.monotonic() - self.shown_at > 0.2:
      self.shown_at = time.monotonic()
      self.stream.write(f"\r{self.label}: {done / self.total:.0%}")
      self.stream.flush()

  def finish(self, text: str) -> None:
    self.stream.write(f"\r{self.label}: {text}\n" if self.tty else f"{self.label}: {text}\n")
    self.stream.flush()


def stderr_is_terminal() -> bool:
  """Whether the user's stderr is a terminal (fd 2 is the filter's pipe once it is installed)."""
  return _terminal[0] if _terminal else os.isatty(2)
