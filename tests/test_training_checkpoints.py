"""Checkpoints and the divergence guard: a killed run resumes to bit-identical weights, a rerun with
other flags is refused until --restart, and a diverging run stops naming the step, saving and
exporting nothing.
"""

import dataclasses
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from kmnist.models import registry
from kmnist.training import checkpoints, optimization, train
from kmnist.training.config import TrainConfig
from kmnist.util.errors import KmnistError

from train_helpers import small_config

TESTS_DIR = Path(__file__).resolve().parent

# One step per execution, so that a kill lands between checkpoints.
CHILD_VALUES = dict(
  steps=300, eval_every=50, steps_per_execution=1, batch_size=50, tflite=("float",), visualize=False
)
# A training run on the synthetic digits in a child process, so that it can be killed. It reports
# each checkpoint it has saved, and at the end saves its final weights and metrics.
CHILD_RUN = textwrap.dedent("""
    import sys, numpy as np
    sys.path.insert(0, {tests_dir!r})
    from conftest import make_synthetic_datasets
    from kmnist.training import checkpoints
    from kmnist.training import train
    from kmnist.training.config import TrainConfig

    original_save = checkpoints.Checkpointer.save
    def reporting_save(self):
      original_save(self)
      print("SAVED", checkpoints.optimizer_step(self.model), flush=True)
    checkpoints.Checkpointer.save = reporting_save

    run_dir = sys.argv[1]
    config = TrainConfig(**{values!r}, model_dir=run_dir + "/run", export_dir=run_dir + "/exported")
    result = train.run(config, datasets_override=make_synthetic_datasets(), log=print)
    np.savez(run_dir + "/weights.npz", *result.model.get_weights())
    print("DONE", result.metrics["test_accuracy"], flush=True)
    """).format(tests_dir=str(TESTS_DIR), values=CHILD_VALUES)


def start_child(run_dir):
  return subprocess.Popen(
    [sys.executable, "-c", CHILD_RUN, str(run_dir)],
    stdout=subprocess.PIPE,
    stderr=subprocess.DEVNULL,
    text=True,
  )


def finish(process) -> str:
  try:
    out, _ = process.communicate(timeout=300)
  finally:
    process.kill()
  assert process.returncode == 0, out
  return out


@pytest.mark.slow  # a child process killed and rerun; resuming itself: the in-process tests below
def test_sigkill_then_rerun_resumes_to_bit_identical_weights(tmp_path, synthetic_datasets):
  killed_dir = tmp_path / "killed"
  killed = start_child(killed_dir)
  try:
    deadline = time.time() + 240
    while time.time() < deadline:
      if killed.stdout.readline().startswith("SAVED 100"):
        killed.send_signal(
          signal.SIGKILL
        )  # mid-run: training goes on between the save and the kill
        break
    killed.wait(timeout=30)
  finally:
    killed.kill()
  assert killed.returncode == -signal.SIGKILL
  assert not (killed_dir / "weights.npz").exists() and not (killed_dir / "exported").exists()

  out = finish(start_child(killed_dir))
  resumed_at = int(out.split("Resuming at step ")[1].split()[0])
  assert 100 <= resumed_at < 300
  # The same run uninterrupted, in this process (runs are bit-identical across processes).
  whole = train.run(
    TrainConfig(**CHILD_VALUES, model_dir=str(tmp_path / "run"), export_dir=str(tmp_path / "x")),
    datasets_override=synthetic_datasets,
  )
  resumed = np.load(killed_dir / "weights.npz")
  for key, weights in zip(resumed.files, whole.model.get_weights(), strict=True):
    assert resumed[key].tobytes() == weights.tobytes()
  metrics = json.loads((killed_dir / "run" / "metrics.json").read_text())
  assert metrics["test_accuracy"] == whole.metrics["test_accuracy"]
  assert metrics["test_loss"] == whole.metrics["test_loss"]


class CrashError(Exception):
  pass


class CrashAfterFirstCheckpoint(keras.callbacks.Callback):
  """Stands for a kill: the run dies right after its first checkpoint (the epoch's end)."""

  def on_epoch_end(self, epoch, logs=None):
    raise CrashError


# The CNN with --augment covers the CNN without it (the same model; the data's own path is the
# softmax regression's, resumed in the SIGKILL test above).
@pytest.mark.parametrize("model, augment", [("mlp", False), ("cnn", True)])
def test_every_model_resumes_to_bit_identical_weights(tmp_path, synthetic_datasets, model, augment):
  # In-process (the SIGKILL above shows a real kill): Adam's moments, the learning-rate schedule,
  # batch norm's statistics and the augmentation must all continue exactly where they stopped.
  # Two epochs of 20 steps: cut after the first.
  short = dict(model=model, augment=augment, steps=40, warmup_steps=10)
  config = small_config(tmp_path / "whole", **short)
  strategy = tf.distribute.get_strategy()
  keras.utils.set_random_seed(0)
  whole = train.train_model(config, synthetic_datasets, strategy).get_weights()
  cut = small_config(tmp_path / "cut", **short)
  keras.utils.set_random_seed(0)
  with pytest.raises(CrashError):
    train.train_model(cut, synthetic_datasets, strategy, callbacks=[CrashAfterFirstCheckpoint()])
  messages = []
  keras.utils.set_random_seed(0)  # as train.run does: TF's global seed is part of the shuffle's
  resumed = train.train_model(cut, synthetic_datasets, strategy, log=messages.append).get_weights()
  assert messages[0].startswith("Resuming at step 20 of 40")
  for a, b in zip(whole, resumed, strict=True):
    assert a.tobytes() == b.tobytes()


def test_a_finished_run_is_exported_again_not_retrained(tmp_path, synthetic_datasets):
  first = train.run(small_config(tmp_path), datasets_override=synthetic_datasets)
  messages = []
  again = train.run(
    small_config(tmp_path), datasets_override=synthetic_datasets, log=messages.append
  )
  assert messages == [
    f"Already trained to step 60 ({tmp_path / 'run' / 'checkpoints'}); evaluating and "
    f"exporting it again (--restart to retrain)."
  ]
  assert again.saved_model_dir.name == "2"
  for a, b in zip(first.model.get_weights(), again.model.get_weights(), strict=True):
    np.testing.assert_array_equal(a, b)


def test_rerun_with_other_flags_refuses_checkpoints_until_restart(tmp_path, synthetic_datasets):
  train.train_model(small_config(tmp_path), synthetic_datasets, tf.distribute.get_strategy())
  with pytest.raises(
    KmnistError, match=r"holds checkpoints of another run \(--learning_rate=0.5 there, 0.1 now\)"
  ):
    train.run(small_config(tmp_path, learning_rate=0.1), datasets_override=synthetic_datasets)
  restarted = train.run(
    small_config(tmp_path, learning_rate=0.1, restart=True), datasets_override=synthetic_datasets
  )
  assert restarted.metrics["config"]["learning_rate"] == 0.1


def test_divergence_stops_naming_the_step_and_exports_nothing(tmp_path, synthetic_datasets):
  # 3e38 overflows float32 on the first update; merely huge rates (1e6) do not: the argmax is
  # scale-invariant.
  with pytest.raises(
    KmnistError, match=r"training diverged: the loss is nan at step 10; lower --learning_rate"
  ):
    train.run(small_config(tmp_path, learning_rate=3e38), datasets_override=synthetic_datasets)
  assert not (tmp_path / "exported").exists()
  assert not (tmp_path / "run" / "metrics.json").exists()
  assert not list(
    (tmp_path / "run" / "checkpoints").glob("ckpt-*")
  )  # nothing non-finite was checkpointed


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_every_model_stops_when_it_diverges(tmp_path, synthetic_datasets, name):
  config = small_config(
    tmp_path, model=name, learning_rate=1e30, warmup_steps=0, lr_schedule="constant"
  )
  with pytest.raises(
    KmnistError,
    match=r"training diverged: .* at step \d+; lower --learning_rate \(now 1e\+30; the default "
    rf"for --model={name} is",
  ):
    train.run(config, datasets_override=synthetic_datasets)
  assert not (tmp_path / "exported").exists()
  assert not list((tmp_path / "run" / "checkpoints").glob("ckpt-*"))


# Checkpoints that lie: readable files whose content is not what the run saved.
LIAR_CONFIG = dict(steps=40, eval_every=20, steps_per_execution=20)


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory, synthetic_datasets):
  """A 40-step run's checkpoints (steps 20 and 40), and the weights each holds."""
  config = small_config(tmp_path_factory.mktemp("liar"), **LIAR_CONFIG)
  keras.utils.set_random_seed(0)
  cut = [CrashAfterFirstCheckpoint()]
  with pytest.raises(CrashError):
    train.train_model(config, synthetic_datasets, tf.distribute.get_strategy(), callbacks=cut)
  at_20 = [w.copy() for w in cut[0].model.get_weights()]
  model = train.train_model(config, synthetic_datasets, tf.distribute.get_strategy())
  return config, Path(config.model_dir) / "checkpoints", {20: at_20, 40: model.get_weights()}


def restore_copy(config, directory: Path, datasets, mutate=None):
  """Copies `directory`, lets `mutate(copy)` edit it, and restores it as a rerun would: returns
  (step, weights, log lines), or raises KmnistError."""
  with tempfile.TemporaryDirectory() as scratch:
    copy = Path(scratch) / "checkpoints"
    shutil.copytree(directory, copy)
    if mutate:
      mutate(copy)
    model = optimization.compile_model(registry.build(), config)
    saver = checkpoints.Checkpointer(
      copy, model, {**config.resume_values(), "data": datasets.fingerprint}
    )
    lines = []
    step = saver.restore(lines.append)
    return step, model.get_weights(), lines


def assert_weights(weights, expected):
  for a, b in zip(weights, expected, strict=True):
    assert a.tobytes() == b.tobytes()


@settings(max_examples=30, deadline=None)
@given(
  name=st.sampled_from(["ckpt-40.index", "ckpt-40.data-00000-of-00001"]),
  where=st.floats(0, 1, exclude_max=True),
  edit=st.one_of(st.integers(1, 255).map(lambda x: ("xor", x)), st.just(("truncate", 0))),
)
def test_an_edited_or_cut_checkpoint_is_never_trained_on(
  saved_run, synthetic_datasets, name, where, edit
):
  config, directory, weights = saved_run

  def mutate(copy):
    data = bytearray((copy / name).read_bytes())
    at = int(where * len(data))
    if edit[0] == "truncate":
      del data[at:]
    else:
      data[at] ^= edit[1]
    (copy / name).write_bytes(bytes(data))

  try:
    step, restored, lines = restore_copy(config, directory, synthetic_datasets, mutate)
  except KmnistError as e:
    assert "pass --restart" in str(e)
    return
  # Resumed: from exactly what was saved at that step (a harmless edit), or from the step before.
  assert_weights(restored, weights[step])
  if step == 20:
    assert lines[0].startswith("Checkpoint ") and "cannot be resumed" in lines[0]


def test_a_checkpoint_with_non_finite_weights_falls_back_to_the_one_before(
  saved_run, synthetic_datasets
):
  config, directory, weights = saved_run

  def poison(copy):
    model = optimization.compile_model(registry.build(), config)
    saver = checkpoints.Checkpointer(copy, model, {})
    saver.checkpoint.restore(str(copy / "ckpt-40")).assert_existing_objects_matched()
    model.layers[-1].kernel.assign(tf.fill(model.layers[-1].kernel.shape, float("nan")))
    saver.checkpoint.write(str(copy / "ckpt-40"))

  step, restored, lines = restore_copy(config, directory, synthetic_datasets, poison)
  assert step == 20
  assert_weights(restored, weights[20])
  assert "cannot be resumed (its weights are not all finite numbers)" in lines[0]
  assert "training makes ckpt-40 again, identically" in lines[1]


@pytest.mark.parametrize(
  "mutate, message",
  [
    (lambda c: (c / "run.json").unlink(), "run.json is missing or unreadable"),
    (lambda c: (c / "run.json").write_text("{"), "run.json is missing or unreadable"),
    (lambda c: (c / "checkpoint").write_text("garbage"), "is missing or unreadable; pass"),
    (lambda c: (c / "checkpoint").unlink(), "is missing or unreadable; pass --restart"),
    (
      lambda c: (c / "run.json").write_text(json.dumps({"data": "0" * 64})),
      "holds checkpoints of another run",
    ),
    (
      lambda c: (c / "run.json").write_text(
        json.dumps(
          {k: v for k, v in json.loads((c / "run.json").read_text()).items() if k != "data"}
        )
      ),
      r"another run \(no record there of the data it was trained on \(an older kmnist",
    ),
  ],
  ids=["no run.json", "bad run.json", "bad index", "no index", "other data", "older kmnist"],
)
def test_checkpoints_that_cannot_be_matched_to_the_run_are_refused(
  saved_run, synthetic_datasets, mutate, message
):
  config, directory, _ = saved_run
  with pytest.raises(KmnistError, match=message):
    restore_copy(config, directory, synthetic_datasets, mutate)


def test_checkpoints_of_other_training_data_are_refused(saved_run, synthetic_datasets):
  config, directory, _ = saved_run
  other = dataclasses.replace(synthetic_datasets, test=synthetic_datasets.validation)
  with pytest.raises(KmnistError, match=r"another run \(other training data \(sha256 \w{12} there"):
    restore_copy(config, directory, other)
