"""Faults and bad input: resume after SIGKILL, determinism, divergence, bad paths and files, atomic writes."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from kmnist import files, train
from train_helpers import small_config
from kmnist.errors import KmnistError

TESTS_DIR = Path(__file__).resolve().parent

# A training run on the synthetic digits in a child process, so that it can be killed. It reports each checkpoint
# it has saved, and at the end saves its final weights and metrics.
CHILD_RUN = textwrap.dedent("""
    import sys, numpy as np
    sys.path.insert(0, {tests_dir!r})
    from conftest import synthetic_split
    from kmnist import checkpoints, data, train
    from kmnist.config import TrainConfig

    original_save = checkpoints.Checkpointer.save
    def reporting_save(self):
      original_save(self)
      print("SAVED", checkpoints.optimizer_step(self.model), flush=True)
    checkpoints.Checkpointer.save = reporting_save

    run_dir = sys.argv[1]
    datasets = data.Datasets(synthetic_split(2000, 1), synthetic_split(200, 2), synthetic_split(500, 3))
    config = TrainConfig(steps=1500, eval_every=100, steps_per_execution=1, batch_size=50,
                         model_dir=run_dir + "/run", export_dir=run_dir + "/exported")
    result = train.run(config, datasets_override=datasets)
    np.savez(run_dir + "/weights.npz", *result.model.get_weights())
    print("DONE", result.metrics["test_accuracy"], flush=True)
    """).format(tests_dir=str(TESTS_DIR))


def start_child(run_dir):
  return subprocess.Popen([sys.executable, "-c", CHILD_RUN, str(run_dir)], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True)


def finish_child(run_dir) -> str:
  process = start_child(run_dir)
  try:
    out, _ = process.communicate(timeout=300)
  finally:
    process.kill()
  assert process.returncode == 0, out
  return out


def test_sigkill_then_rerun_resumes_to_bit_identical_weights(tmp_path):
  finish_child(tmp_path / "uninterrupted")

  killed = tmp_path / "killed"
  process = start_child(killed)
  try:
    deadline = time.time() + 240
    while time.time() < deadline:
      line = process.stdout.readline()
      if line.startswith("SAVED 300"):
        process.send_signal(signal.SIGKILL)  # mid-run: training goes on between the save and the kill
        break
    process.wait(timeout=30)
  finally:
    process.kill()
  assert process.returncode == -signal.SIGKILL
  assert not (killed / "weights.npz").exists() and not (killed / "exported").exists()

  out = finish_child(killed)
  resumed_at = int(out.split("Resuming at step ")[1].split()[0])
  assert 300 <= resumed_at < 1500
  a, b = np.load(tmp_path / "uninterrupted" / "weights.npz"), np.load(killed / "weights.npz")
  for key in a.files:
    assert a[key].tobytes() == b[key].tobytes()
  metrics = [json.loads((d / "run" / "metrics.json").read_text()) for d in (tmp_path / "uninterrupted", killed)]
  assert metrics[0]["test_accuracy"] == metrics[1]["test_accuracy"]
  assert metrics[0]["test_loss"] == metrics[1]["test_loss"]


def test_same_seed_gives_identical_weights_metrics_and_variable_bytes(tmp_path, synthetic_datasets):
  runs = [train.run(small_config(tmp_path / name), datasets_override=synthetic_datasets) for name in "ab"]
  assert runs[0].metrics["test_accuracy"] == runs[1].metrics["test_accuracy"]
  assert runs[0].metrics["test_loss"] == runs[1].metrics["test_loss"]
  exported = [r.saved_model_dir for r in runs]
  for name in ("variables/variables.data-00000-of-00001", "variables/variables.index"):
    assert (exported[0] / name).read_bytes() == (exported[1] / name).read_bytes()
  tflite = [r.tflite_paths["float"].read_bytes() for r in runs]
  assert tflite[0] == tflite[1]


def test_rerun_with_other_flags_refuses_checkpoints_until_restart(tmp_path, synthetic_datasets):
  train.run(small_config(tmp_path), datasets_override=synthetic_datasets)
  with pytest.raises(KmnistError, match=r"holds checkpoints of another run \(--learning_rate=0.5 there, 0.1 now\)"):
    train.run(small_config(tmp_path, learning_rate=0.1), datasets_override=synthetic_datasets)
  restarted = train.run(small_config(tmp_path, learning_rate=0.1, restart=True), datasets_override=synthetic_datasets)
  assert restarted.metrics["config"]["learning_rate"] == 0.1


def test_divergence_stops_naming_the_step_and_exports_nothing(tmp_path, synthetic_datasets):
  # 3e38 overflows float32 on the first update; merely huge rates (1e6) do not: the argmax is scale-invariant.
  with pytest.raises(KmnistError, match=r"training diverged: the loss is nan at step 10; lower --learning_rate"):
    train.run(small_config(tmp_path, learning_rate=3e38), datasets_override=synthetic_datasets)
  assert not (tmp_path / "exported").exists()
  assert not (tmp_path / "run" / "metrics.json").exists()
  assert not list((tmp_path / "run" / "checkpoints").glob("ckpt-*"))  # nothing non-finite was checkpointed


def run_cli(*args, timeout=120, cwd=None):
  return subprocess.run([sys.executable, "-m", "kmnist.train", *map(str, args)], capture_output=True, text=True,
                        timeout=timeout, cwd=cwd)


def error_lines(result):
  return [line for line in result.stderr.splitlines() if line.startswith("kmnist-train: error:")]


def test_output_paths_that_are_files_or_unwritable_are_refused(tmp_path):
  a_file = tmp_path / "a_file"
  a_file.write_text("")
  cases = [
      (["--model_dir", a_file], f"--model_dir={a_file} cannot be a directory: {a_file} is a file"),
      (["--export_dir", a_file / "sub"], f"--export_dir={a_file / 'sub'} cannot be a directory: {a_file} is a file"),
      (["--model_dir", "/proc/1/kmnist"], "--model_dir=/proc/1/kmnist is not writable"),
  ]
  for args, message in cases:
    flag, value = args
    result = run_cli(f"{flag}={value}", f"--data_dir={tmp_path / 'data'}", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = error_lines(result)
    assert message in line
  assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # nothing written anywhere


@pytest.mark.parametrize("damage, message", [
    ("missing", "train-labels-idx1-ubyte.gz is missing"),
    ("truncated", "train-labels-idx1-ubyte.gz is corrupted or truncated"),
    ("corrupted", "train-labels-idx1-ubyte.gz is corrupted or truncated"),
])
def test_bad_manual_files_fail_fast_naming_the_file(tmp_path, damage, message):
  from kmnist import data

  manual = tmp_path / "manual"
  manual.mkdir()
  for name in data.MNIST_FILES:
    (manual / name).write_bytes((data.VENDORED_DIR / name).read_bytes())
  victim = manual / "train-labels-idx1-ubyte.gz"
  if damage == "missing":
    victim.unlink()
  elif damage == "truncated":
    victim.write_bytes(victim.read_bytes()[:1000])
  else:
    content = bytearray(victim.read_bytes())
    content[len(content) // 2] ^= 0xFF  # one flipped byte, same size
    victim.write_bytes(bytes(content))
  start = time.time()
  result = run_cli(f"--manual_dir={manual}", f"--data_dir={tmp_path / 'data'}", cwd=tmp_path)
  elapsed = time.time() - start
  assert result.returncode == 2
  (line,) = error_lines(result)
  assert message in line
  print(f"{damage}: failed in {elapsed:.1f} s")
  assert elapsed < 30  # the bound promised to users (TFDS would retry a download for ~200 s)
  assert not (tmp_path / "data" / "mnist").exists() and not (tmp_path / "exported").exists()


def test_no_data_at_all_says_how_to_provide_it(tmp_path):
  empty = tmp_path / "empty"
  empty.mkdir()
  result = run_cli(f"--manual_dir={empty}", f"--data_dir={tmp_path / 'data'}", cwd=tmp_path)
  assert result.returncode == 2
  (line,) = error_lines(result)
  assert "put the four original MNIST .gz files" in line and "--manual_dir" in line


def test_existing_export_version_is_refused_before_training(tmp_path):
  (tmp_path / "exported" / "saved_model" / "3").mkdir(parents=True)
  result = run_cli("--export_version=3", f"--data_dir={tmp_path / 'data'}", cwd=tmp_path)
  assert result.returncode == 2
  (line,) = error_lines(result)
  assert "--export_version=3" in line and "already exists" in line
  assert not (tmp_path / "data").exists() and not (tmp_path / "runs").exists()


def test_a_crash_while_writing_leaves_the_old_file_whole(tmp_path, monkeypatch):
  path = tmp_path / "metrics.json"
  files.write_json_atomic(path, {"test_accuracy": 0.9})

  def crash(*args):
    raise OSError("disk full")

  monkeypatch.setattr(os, "fsync", crash)
  with pytest.raises(OSError, match="disk full"):
    files.write_json_atomic(path, {"test_accuracy": 0.1, "padding": "x" * 100_000})
  assert json.loads(path.read_text()) == {"test_accuracy": 0.9}
  assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_outputs_get_the_usual_permissions(tmp_path):
  umask = os.umask(0o022)
  try:
    path = files.write_json_atomic(tmp_path / "metrics.json", {})
    with files.atomic_directory(tmp_path / "1") as tmp:
      (tmp / "saved_model.pb").write_bytes(b"")
  finally:
    os.umask(umask)
  assert path.stat().st_mode & 0o777 == 0o644
  assert (tmp_path / "1").stat().st_mode & 0o777 == 0o755


def test_predict_refuses_broken_models(tmp_path):
  broken_sm = tmp_path / "sm"
  broken_sm.mkdir()
  (broken_sm / "saved_model.pb").write_bytes(b"garbage")
  broken_tflite = tmp_path / "m.tflite"
  broken_tflite.write_bytes(b"\0\0\0\0TFL3" + b"\0" * 100)
  np.save(tmp_path / "d.npy", np.zeros((28, 28), np.uint8))
  for model, kind in ((broken_sm, "saved_model"), (broken_tflite, "tflite")):
    result = subprocess.run([sys.executable, "-m", "kmnist.predict", f"--model={model}", str(tmp_path / "d.npy")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"kmnist-predict: error: --model={model} could not be loaded as a {kind}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_cli_divergence_exits_nonzero_with_one_line(tmp_path, real_data_dir):
  result = run_cli("--learning_rate=3e38", f"--data_dir={real_data_dir}", cwd=tmp_path, timeout=300)
  assert result.returncode == 2
  (line,) = error_lines(result)
  assert "training diverged" in line and "at step" in line
  assert not (tmp_path / "exported").exists()
