"""Ctrl-C during training, taken between steps: the run stops where Python is in charge.

By default Python raises KeyboardInterrupt wherever the main thread happens to be, and in a run
that is often inside TensorFlow's own Python (creating or finalizing a dataset iterator): there it
left TensorFlow's C++ state broken. Measured on the synthetic run, interrupted just after its first
step: 2 of 24 processes aborted ("corrupted size vs. prev_size") or hung instead of exiting. So
while training runs, Ctrl-C only marks the run, and a Keras callback raises the KeyboardInterrupt at
the next step's end (or after the epoch's checkpoint is saved). A second Ctrl-C interrupts at once.
"""

import contextlib
import signal
import threading

import keras


class RaiseAtStepEnd(keras.callbacks.Callback):
  """Raises KeyboardInterrupt at the first step end (training or validation) after a Ctrl-C."""

  def __init__(self):
    super().__init__()
    self.pressed = False

  def _raise_if_pressed(self, *args, **kwargs):
    del args, kwargs
    if self.pressed:
      raise KeyboardInterrupt

  on_train_batch_end = on_test_batch_end = on_epoch_end = _raise_if_pressed


@contextlib.contextmanager
def between_steps():
  """Yields the callback to pass last to `fit`; Ctrl-C in the block is held for it."""
  callback = RaiseAtStepEnd()
  if threading.current_thread() is not threading.main_thread():
    yield callback  # only the main thread may take signals: Python's default stays
    return
  previous = signal.getsignal(signal.SIGINT)

  def press(signum, frame):
    del signum, frame
    callback.pressed = True
    signal.signal(signal.SIGINT, previous)  # a second Ctrl-C is not held back

  signal.signal(signal.SIGINT, press)
  try:
    yield callback
  finally:
    signal.signal(signal.SIGINT, previous)
