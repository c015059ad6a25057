"""Ctrl-C while training is held until a step ends, and a second Ctrl-C is not held back."""

import signal

import keras
import numpy as np
import pytest

from kmnist.training import interrupt


@pytest.fixture(autouse=True)
def python_default_ctrl_c():
  # As in a command's process: other tests in this worker may have left a handler of their own
  # (an in-process server's, for one), which the second Ctrl-C below would reach instead.
  previous = signal.signal(signal.SIGINT, signal.default_int_handler)
  yield
  signal.signal(signal.SIGINT, previous)


def press_ctrl_c():
  signal.raise_signal(signal.SIGINT)  # in this thread, now: a kill() may reach another thread first


def test_ctrl_c_is_held_until_a_step_ends_and_a_second_one_is_not():
  with interrupt.between_steps() as callback:
    press_ctrl_c()  # held: no KeyboardInterrupt here
    assert callback.pressed
    with pytest.raises(KeyboardInterrupt):
      callback.on_train_batch_end(0)
    with pytest.raises(KeyboardInterrupt):
      press_ctrl_c()
  assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_fit_stops_at_the_end_of_the_step_that_was_running():
  model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
  model.compile(optimizer="sgd", loss="mse")

  class PressDuringStep3(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
      if batch == 3:
        press_ctrl_c()

  with interrupt.between_steps() as callback, pytest.raises(KeyboardInterrupt):
    model.fit(
      np.zeros((100, 2)),
      np.zeros((100, 1)),
      batch_size=10,
      verbose=0,
      callbacks=[PressDuringStep3(), callback],
    )
  assert int(model.optimizer.iterations) == 4  # step 3 (the 4th) finished, no 5th began
