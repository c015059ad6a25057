"""The stopwatch: seconds per stage, in the order the stages ran, a stage timed twice adding up."""

import pytest

from kmnist.util.stopwatch import Stopwatch


def test_stages_keep_their_order_and_add_up():
  clock = Stopwatch()
  with clock("data"):
    pass
  clock.add("tflite float: export", 0.25)
  clock.add("tflite float: check", 0.5)
  clock.add("tflite float: export", 0.25)
  with pytest.raises(ValueError), clock("pictures"):  # a stage that fails is still timed
    raise ValueError("no picture")
  assert list(clock.seconds) == ["data", "tflite float: export", "tflite float: check", "pictures"]
  assert clock.seconds["tflite float: export"] == 0.5
  assert clock.total("tflite") == 1.0
  assert clock.total() == pytest.approx(1.0 + clock.seconds["data"] + clock.seconds["pictures"])
