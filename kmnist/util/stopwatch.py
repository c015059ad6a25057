"""Where a run's seconds go: wall time per stage, in the order the stages ran.

    clock = Stopwatch()
    with clock("training"):
      ...
    clock.seconds  # {"training": 1.21, ...}

kmnist-train prints the stages in its last line and writes them into metrics.json ("seconds");
`python -m benchmarks` reads them from there to show where the default command's time goes.
"""

import contextlib
import time


class Stopwatch:
  """Seconds per named stage; a stage timed twice adds up."""

  def __init__(self):
    self.seconds: dict[str, float] = {}

  @contextlib.contextmanager
  def __call__(self, stage: str):
    start = time.perf_counter()
    try:
      yield
    finally:
      self.add(stage, time.perf_counter() - start)

  def add(self, stage: str, seconds: float) -> None:
    self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

  def total(self, prefix: str = "") -> float:
    """The seconds of every stage whose name starts with `prefix`."""
    return sum(s for stage, s in self.seconds.items() if stage.startswith(prefix))
