"""Checkpoints for resuming a killed run exactly, and the guard that stops a diverging one.

A checkpoint holds the model and the optimizer (whose `iterations` is the step count). The data
position needs no saving: the training stream is a pure function of the seed, so a resumed run skips
the batches already seen and then sees exactly the batches an uninterrupted run would — the final
weights are bit-identical.
"""

import json
import math
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kmnist import files
from kmnist.config import TrainConfig
from kmnist.errors import KmnistError

RUN_FILE = (
    "run.json"  # the flags that decide the weights; a resume with other values would mix two runs
)


def optimizer_step(model: keras.Model) -> int:
  """Optimizer updates so far (`.numpy()`: under a strategy it is a distributed variable)."""
  return int(model.optimizer.iterations.numpy())


class Checkpointer:
  """Saves every `--eval_every` steps into `directory`; `restore()` returns the step to resume."""

  def __init__(self, directory, model: keras.Model, run_values: dict, max_to_keep: int = 2):
    self.directory = Path(directory)
    self.run_values = run_values
    model.optimizer.build(model.trainable_variables)  # so `iterations` exists to be restored into
    self.checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    self.manager = tf.train.CheckpointManager(
        self.checkpoint, str(self.directory), max_to_keep=max_to_keep
    )
    self.model = model

  def restore(self) -> int:
    if not self.manager.latest_checkpoint:
      return 0
    saved = json.loads((self.directory / RUN_FILE).read_text())
    if saved != self.run_values:
      differences = ", ".join(
          f"--{k}={saved.get(k)} there, {v} now"
          for k, v in self.run_values.items()
          if saved.get(k) != v
      )
      raise KmnistError(
          f"--model_dir={self.directory.parent} holds checkpoints of another run ({differences}); "
          f"pass --restart to discard them, or use another --model_dir"
      )
    self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
    return optimizer_step(self.model)

  def save(self) -> None:
    if not (self.directory / RUN_FILE).is_file():
      files.write_json_atomic(self.directory / RUN_FILE, self.run_values)
    # CheckpointManager writes the files first and the `checkpoint` index last, so a kill mid-save
    # leaves the previous checkpoint as the latest.
    self.manager.save(checkpoint_number=optimizer_step(self.model))

  def callback(self) -> keras.callbacks.Callback:
    checkpointer = self

    class SaveEachEpoch(keras.callbacks.Callback):

      def on_epoch_end(self, epoch, logs=None):
        checkpointer.save()

    return SaveEachEpoch()


def discard(directory) -> None:
  """`--restart`: forget the checkpoints of an earlier run in `directory`."""
  shutil.rmtree(directory, ignore_errors=True)


class StopOnNonFinite(keras.callbacks.Callback):
  """Raises, naming the step, as soon as the loss or the weights stop being finite numbers.

  Keras reports the loss every `steps_per_execution` steps: the resolution of the step named.
  """

  def __init__(self, config: TrainConfig):
    super().__init__()
    self.config = config

  def _fail(self, what):
    step = optimizer_step(self.model)
    raise KmnistError(
        f"training diverged: {what} at step {step}; lower --learning_rate (now "
        f"{self.config.learning_rate:g}; {self.config.default_learning_rate_text()}). Nothing was "
        "exported"
    )

  def on_train_batch_end(self, batch, logs=None):
    loss = (logs or {}).get("loss")
    if loss is not None and not math.isfinite(float(loss)):
      self._fail(f"the loss is {float(loss)}")

  def on_epoch_end(self, epoch, logs=None):
    if not all(np.isfinite(w).all() for w in self.model.get_weights()):
      self._fail("the weights are not finite")
