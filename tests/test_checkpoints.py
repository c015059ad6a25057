"""Checkpoints and the divergence guard: a killed run resumes to bit-identical weights, a rerun with
other flags is refused until --restart, and a diverging run stops naming the step, saving and
exporting nothing.
"""

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from kmnist import train
from kmnist.errors import KmnistError

from train_helpers import small_config

TESTS_DIR = Path(__file__).resolve().parent

# A training run on the synthetic digits in a child process, so that it can be killed. It reports
# each checkpoint it has saved, and at the end saves its final weights and metrics.
CHILD_RUN = textwrap.dedent("""
    import sys, numpy as np
    sys.path.insert(0, {tests_dir!r})
    from conftest import make_synthetic_datasets
    from kmnist import checkpoints, train
    from kmnist.config import TrainConfig

    original_save = checkpoints.Checkpointer.save
    def reporting_save(self):
      original_save(self)
      print("SAVED", checkpoints.optimizer_step(self.model), flush=True)
    checkpoints.Checkpointer.save = reporting_save

    run_dir = sys.argv[1]
    config = TrainConfig(steps=800, eval_every=100, steps_per_execution=1, batch_size=50,
                         tflite=("float",), visualize=False, model_dir=run_dir + "/run",
                         export_dir=run_dir + "/exported")
    result = train.run(config, datasets_override=make_synthetic_datasets(), log=print)
    np.savez(run_dir + "/weights.npz", *result.model.get_weights())
    print("DONE", result.metrics["test_accuracy"], flush=True)
    """).format(tests_dir=str(TESTS_DIR))


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


def test_sigkill_then_rerun_resumes_to_bit_identical_weights(tmp_path):
  uninterrupted = start_child(
      tmp_path / "uninterrupted"
  )  # alongside: only the killed run's timing matters
  killed_dir = tmp_path / "killed"
  killed = start_child(killed_dir)
  try:
    deadline = time.time() + 240
    while time.time() < deadline:
      if killed.stdout.readline().startswith("SAVED 300"):
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
  assert 300 <= resumed_at < 800
  finish(uninterrupted)
  a, b = np.load(tmp_path / "uninterrupted" / "weights.npz"), np.load(killed_dir / "weights.npz")
  for key in a.files:
    assert a[key].tobytes() == b[key].tobytes()
  metrics = [
      json.loads((d / "run" / "metrics.json").read_text())
      for d in (tmp_path / "uninterrupted", killed_dir)
  ]
  assert metrics[0]["test_accuracy"] == metrics[1]["test_accuracy"]
  assert metrics[0]["test_loss"] == metrics[1]["test_loss"]


class CrashError(Exception):
  pass


class CrashAfterFirstCheckpoint(keras.callbacks.Callback):
  """Stands for a kill: the run dies right after its first checkpoint (the epoch's end)."""

  def on_epoch_end(self, epoch, logs=None):
    raise CrashError


@pytest.mark.parametrize("model, augment", [("mlp", False), ("cnn", False), ("cnn", True)])
def test_every_model_resumes_to_bit_identical_weights(tmp_path, synthetic_datasets, model, augment):
  # In-process (the SIGKILL above shows a real kill): Adam's moments, the learning-rate schedule,
  # batch norm's statistics and the augmentation must all continue exactly where they stopped.
  config = small_config(tmp_path / "whole", model=model, augment=augment, warmup_steps=10)
  strategy = tf.distribute.get_strategy()
  keras.utils.set_random_seed(0)
  whole = train.train_model(config, synthetic_datasets, strategy).get_weights()
  cut = small_config(tmp_path / "cut", model=model, augment=augment, warmup_steps=10)
  keras.utils.set_random_seed(0)
  with pytest.raises(CrashError):
    train.train_model(cut, synthetic_datasets, strategy, callbacks=[CrashAfterFirstCheckpoint()])
  messages = []
  keras.utils.set_random_seed(0)  # as train.run does: TF's global seed is part of the shuffle's
  resumed = train.train_model(cut, synthetic_datasets, strategy, log=messages.append).get_weights()
  assert messages[0].startswith("Resuming at step 20 of 60")
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
