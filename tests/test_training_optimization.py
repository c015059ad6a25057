"""The learning-rate schedules (kmnist.training.optimization)."""

import keras
import numpy as np
import pytest

from kmnist.training import optimization
from kmnist.training.config import TrainConfig


def rates(config: TrainConfig) -> np.ndarray:
  schedule = optimization.learning_rate(config)
  return np.array([float(schedule(step)) for step in range(config.steps + 1)])


def test_cosine_schedule_warms_up_then_decays_to_zero():
  config = TrainConfig(
    model="cnn", steps=1000, lr_schedule="cosine", warmup_steps=100, learning_rate=0.004
  )
  schedule = optimization.learning_rate(config)
  rates = [float(schedule(step)) for step in (0, 50, 100, 550, 1000)]
  assert rates[0] == 0 and rates[1] == pytest.approx(0.002) and rates[2] == pytest.approx(0.004)
  assert rates[3] == pytest.approx(0.002, rel=1e-3) and rates[4] == pytest.approx(0.0, abs=1e-9)
  assert optimization.learning_rate(TrainConfig()) == 0.5  # the tutorial's: constant
  assert isinstance(optimization.optimizer(config), keras.optimizers.Adam)


def test_warm_restart_settles_at_a_seventh_of_the_steps_then_restarts_at_half_the_peak():
  lr = rates(TrainConfig(model="cnn", steps=700, lr_schedule="warm_restart", warmup_steps=10))
  assert lr[0] == 0 and lr[10] == pytest.approx(0.02)
  assert np.all(np.diff(lr[:11]) > 0) and np.all(np.diff(lr[10:100]) < 0)
  assert lr[99] < 1e-4 and lr[100] == pytest.approx(0.01)  # the restart
  assert np.all(np.diff(lr[100:]) <= 0) and lr[700] == pytest.approx(0, abs=1e-9)


def test_the_cnns_schedule_keeps_its_proportions_in_a_short_run():
  config = TrainConfig(model="cnn")
  assert (config.lr_schedule, config.warmup_steps) == ("warm_restart", 50)
  short = TrainConfig(model="cnn", steps=60)
  assert short.warmup_steps == 1 and rates(short)[60 // 7] == pytest.approx(0.01)
