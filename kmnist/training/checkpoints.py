"""Checkpoints for resuming a killed run exactly, and the guard that stops a diverging one.

A checkpoint holds the model and the optimizer (whose `iterations` is the step count). The data
position needs no saving: the training stream is a pure function of the seed, so a resumed run skips
the batches already seen and then sees exactly the batches an uninterrupted run would — the final
weights are bit-identical.
"""

import contextlib
import json
import math
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from kmnist.training.config import TrainConfig
from kmnist.util import disk, files
from kmnist.util.errors import KmnistError, one_line

# The flags that decide the weights; a resume with other values would mix two runs.
RUN_FILE = "run.json"
INDEX_FILE = "checkpoint"  # CheckpointManager's list of the checkpoints, written last on each save


def optimizer_step(model: keras.Model) -> int:
  """Optimizer updates so far (`.numpy()`: under a strategy it is a distributed variable)."""
  return int(model.optimizer.iterations.numpy())


class DamagedCheckpointError(Exception):
  """A checkpoint that cannot be resumed exactly: unreadable, of another model, or inconsistent."""


class Checkpointer:
  """Saves every `--eval_every` steps into `directory`; `restore()` returns the step to resume.

  A checkpoint is resumed only if it reads back whole (TensorFlow checks every tensor's crc32c),
  fits the model, holds finite weights and the step its name says: a damaged newest checkpoint is
  skipped for the one before it, which trains to the same weights again.

  Not Keras's BackupAndRestore: it restores inside `fit`, after the seeded batches were built from
  step 0 (a resumed run would train on other batches), rewrites its one file in place (a full disk
  tears it), and resumes whatever flags and data the rerun has.
  """

  def __init__(self, directory, model: keras.Model, run_values: dict, max_to_keep: int = 2):
    self.directory = Path(directory)
    self.run_values = run_values
    model.optimizer.build(model.trainable_variables)  # so `iterations` exists to be restored into
    self.checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    self.manager = tf.train.CheckpointManager(
      self.checkpoint, str(self.directory), max_to_keep=max_to_keep
    )
    self.model = model

  def restore(self, log=logging.info) -> int:
    """The step to resume from (0: none), after checking the checkpoints belong to this run."""
    listed = self.manager.checkpoints
    if not listed:
      if any(self.directory.glob("ckpt-*.index")):
        raise KmnistError(
          f"{self.directory / INDEX_FILE}, the list of the checkpoints in {self.directory}, is "
          "missing or unreadable; pass --restart to train from step 0"
        )
      return 0
    self._check_run_file()
    self._sweep()
    for prefix in reversed(listed):
      try:
        step = self._restore_exactly(prefix)
      except DamagedCheckpointError as e:
        log(f"Checkpoint {prefix} cannot be resumed ({e}); trying the one before it.")
        continue
      if prefix != listed[-1]:
        log(f"Resuming from {prefix}: training makes {Path(listed[-1]).name} again, identically.")
      return step
    raise KmnistError(
      f"no checkpoint in {self.directory} can be resumed (the newest, {listed[-1]}: see the "
      "lines above); pass --restart to train from step 0"
    )

  def _check_run_file(self) -> None:
    try:
      saved = json.loads((self.directory / RUN_FILE).read_text())
      if not isinstance(saved, dict):
        raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
      raise KmnistError(
        f"{self.directory / RUN_FILE} is missing or unreadable ({one_line(e)}), so the "
        "checkpoints beside it cannot be matched to this run; pass --restart to discard them"
      ) from None
    if saved != self.run_values:
      differences = ", ".join(
        describe(k, saved.get(k), v) for k, v in self.run_values.items() if saved.get(k) != v
      )
      raise KmnistError(
        f"--model_dir={self.directory.parent} holds checkpoints of another run ({differences}); "
        f"pass --restart to discard them, or use another --model_dir"
      )

  def _restore_exactly(self, prefix: str) -> int:
    number = int(prefix.rsplit("-", 1)[1])
    try:
      self.checkpoint.restore(prefix).assert_existing_objects_matched()
    except Exception as e:  # a file of any content: DataLossError, NotFoundError, AssertionError...
      raise DamagedCheckpointError(one_line(e)) from None
    step = optimizer_step(self.model)
    if step != number or step % self.run_values["eval_every"] or step > self.run_values["steps"]:
      raise DamagedCheckpointError(f"it holds step {step}, which this run never saves as {prefix}")
    if not all(np.isfinite(w).all() for w in self.model.get_weights()):
      raise DamagedCheckpointError("its weights are not all finite numbers")
    return step

  def save(self) -> None:
    with disk.reported(self.directory):
      try:
        if not (self.directory / RUN_FILE).is_file():
          files.write_json_atomic(self.directory / RUN_FILE, self.run_values)
        # CheckpointManager writes the files first and the `checkpoint` index last, so a save cut
        # by a kill or a full disk leaves the previous checkpoint as the latest.
        self.manager.save(checkpoint_number=optimizer_step(self.model))
      except BaseException:
        self._sweep()
        raise

  def _sweep(self) -> None:
    """Removes what a cut save leaves: TensorFlow's `ckpt-N_temp` directories, a half-written
    index, and checkpoint files the index does not list (a read-only disk keeps them)."""
    listed = {Path(prefix).name for prefix in self.manager.checkpoints}
    for path in [*self.directory.glob("ckpt-*"), *self.directory.glob(f"{INDEX_FILE}.tmp*")]:
      if path.name.split(".")[0] not in listed:
        with contextlib.suppress(OSError):
          shutil.rmtree(path) if path.is_dir() else path.unlink()

  def callback(self) -> keras.callbacks.Callback:
    checkpointer = self

    class SaveEachEpoch(keras.callbacks.Callback):
      def on_epoch_end(self, epoch, logs=None):
        checkpointer.save()

    return SaveEachEpoch()


def describe(key: str, there, now) -> str:
  """One difference between run.json and this run, as messages name it: flags as flags."""
  if key == "data" and there is None:
    return "no record there of the data it was trained on (an older kmnist wrote it)"
  if key == "data":
    return f"other training data (sha256 {str(there)[:12]} there, {str(now)[:12]} now)"
  return f"--{key}={there} there, {now} now"


def discard(directory) -> None:
  """`--restart`: forget the checkpoints of an earlier run in `directory`."""
  shutil.rmtree(directory, ignore_errors=True)


class StopOnNonFinite(keras.callbacks.Callback):
  """Raises, naming the step, as soon as the loss or the weights stop being finite numbers.

  Keras reports the loss every `steps_per_execution` steps: the resolution of the step named.
  Not Keras's TerminateOnNaN: it looks at the loss alone, so weights that overflowed in an epoch's
  last update would be checkpointed, and its error names neither the step nor the fix.
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
