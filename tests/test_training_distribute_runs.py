"""kmnist-train on 2 replicas (two logical CPUs) and on a 2-worker cluster (two processes on
127.0.0.1), each against the single-device run with the same global batch and seed.

Each run is a fresh process: logical devices and a cluster's collectives are fixed when TensorFlow
starts. The fast tests train on the synthetic digits (tests/synthetic_cli.py), the slow ones on the
real MNIST. Every process is bounded by a timeout and killed in `finally`.
"""

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import synthetic_cli

from kmnist.export import saved_model

SYNTHETIC_CLI = [synthetic_cli.PATH]
REAL_CLI = ["-m", "kmnist.cli.train"]
SMALL_RUN = [
  "--steps=60",
  "--eval_every=20",
  "--batch_size=50",
  "--steps_per_execution=10",
  "--tflite=float",
  "--novisualize",
]
RUN_TIMEOUT_S = 600  # generous: 2 shared cores; a hang fails the test instead of blocking it
# A dead worker must stop the others within this bound. TensorFlow's coordination service declares a
# worker dead after 10 s without heartbeats (its default, checked every second); the rest is
# unwinding on a loaded machine.
DEAD_WORKER_BOUND_S = 60


def free_ports(n: int) -> list[int]:
  sockets = [socket.socket() for _ in range(n)]
  try:
    for s in sockets:
      s.bind(("127.0.0.1", 0))
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def worker_env(tmp_path: Path, tf_config: dict | None) -> dict:
  env = dict(
    os.environ, PYTHONUNBUFFERED="1", TMPDIR=str(tmp_path / "tmp")
  )  # TMPDIR: to see what is left there
  (tmp_path / "tmp").mkdir(exist_ok=True)
  env.pop("TF_CONFIG", None)
  if tf_config:
    env["TF_CONFIG"] = json.dumps(tf_config)
  return env


def outputs_of(run_dir: Path) -> list[str]:
  return [f"--model_dir={run_dir / 'run'}", f"--export_dir={run_dir / 'exported'}"]


@contextlib.contextmanager
def started(commands: list[tuple[list[str], Path, dict]]):
  """Starts one process per (argv, log file, env); kills whichever are still running on the way
  out."""
  processes = []
  try:
    for argv, log, env in commands:
      processes.append(
        subprocess.Popen(
          [sys.executable, *argv], stdout=log.open("w"), stderr=subprocess.STDOUT, env=env
        )
      )
    yield processes
  finally:
    for p in processes:
      if p.poll() is None:
        p.kill()
      p.wait()


def train_alone(tmp_path: Path, cli: list[str], args: list[str]) -> dict:
  """One kmnist-train process; returns its metrics.json."""
  log = tmp_path / "train.log"
  with started([(cli + args + outputs_of(tmp_path), log, worker_env(tmp_path, None))]) as (
    process,
  ):
    assert process.wait(timeout=RUN_TIMEOUT_S) == 0, log.read_text()[-3000:]
  return json.loads((tmp_path / "run" / "metrics.json").read_text())


def cluster_commands(tmp_path: Path, cli: list[str], args: list[str], workers: int = 2):
  """Worker i of a TF_CONFIG cluster on 127.0.0.1, writing under tmp_path/worker<i>/."""
  addresses = [f"127.0.0.1:{port}" for port in free_ports(workers)]
  commands = []
  for i in range(workers):
    tf_config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": i}}
    commands.append(
      (
        cli + args + outputs_of(tmp_path / f"worker{i}"),
        tmp_path / f"worker{i}.log",
        worker_env(tmp_path, tf_config),
      )
    )
  return commands


def train_in_cluster(tmp_path: Path, cli: list[str], args: list[str]) -> dict:
  """A 2-worker cluster; checks that only the chief (worker 0) left outputs, returns its
  metrics.json."""
  commands = cluster_commands(tmp_path, cli, args)
  with started(commands) as processes:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    for process, (_, log, _) in zip(processes, commands, strict=True):
      assert process.wait(timeout=max(1, deadline - time.monotonic())) == 0, log.read_text()[-3000:]
  assert "non-chief worker: done" in (tmp_path / "worker1.log").read_text()
  assert not (
    tmp_path / "worker1"
  ).exists()  # no metrics, no exports: it wrote to a temporary dir...
  assert list((tmp_path / "tmp").iterdir()) == []  # ...and removed it
  assert sorted(p.name for p in (tmp_path / "worker0" / "exported" / "saved_model").iterdir()) == [
    "1"
  ]
  return json.loads((tmp_path / "worker0" / "run" / "metrics.json").read_text())


def exported_logits(metrics: dict, images: np.ndarray) -> np.ndarray:
  return saved_model.predict_saved_model(metrics["saved_model_dir"], images)["logits"]


def assert_same_model(metrics: dict, single: dict, images: np.ndarray):
  """Same batches, same summed gradients: the same model up to float rounding, so the same test
  accuracy.

  Plain SGD on the softmax regression carries rounding differences through linearly (logits within
  1e-4). Adam divides each step by the root of its running squared gradients, which are tiny early
  on, so it magnifies them: for the MLP and the CNN the logits agree to 1 % of their range, the
  predicted digits to 99 %, and the test accuracy to 0.1 point.
  """
  print(
    f"test accuracy: {metrics['test_accuracy']:.4f} on {metrics['replicas']} replicas, "
    f"{single['test_accuracy']:.4f} on one device"
  )
  logits, single_logits = exported_logits(metrics, images), exported_logits(single, images)
  if metrics["config"]["optimizer"] == "sgd":
    np.testing.assert_allclose(logits, single_logits, atol=1e-4)
    assert (
      abs(metrics["test_accuracy"] - single["test_accuracy"]) <= 0.003
    )  # the 0.3 points
    return
  assert np.max(np.abs(logits - single_logits)) <= 0.01 * np.max(np.abs(single_logits))
  assert np.mean(logits.argmax(-1) == single_logits.argmax(-1)) >= 0.99
  assert abs(metrics["test_accuracy"] - single["test_accuracy"]) <= 0.001


# Every model on the synthetic digits; the CNN with --augment, which must give every replica its
# rows of the same augmented global batch. One xdist worker per model trains its one-device run.
MODEL_RUNS = {
  "softmax": [],
  "mlp": ["--model=mlp", "--warmup_steps=10"],
  "cnn": ["--model=cnn", "--warmup_steps=10", "--augment"],
}


@pytest.fixture(
  scope="module",
  params=[
    pytest.param(name, marks=pytest.mark.xdist_group(f"distribute_{name}")) for name in MODEL_RUNS
  ],
)
def single_device(request, tmp_path_factory):
  args = SMALL_RUN + MODEL_RUNS[request.param]
  metrics = train_alone(
    tmp_path_factory.mktemp("single"), SYNTHETIC_CLI, args + ["--strategy=default"]
  )
  return args, metrics


def test_mirrored_on_two_cpus_is_the_single_device_model(
  tmp_path, single_device, synthetic_datasets
):
  args, single = single_device
  metrics = train_alone(tmp_path, SYNTHETIC_CLI, args + ["--strategy=mirrored", "--cpu_replicas=2"])
  assert (metrics["replicas"], single["replicas"]) == (2, 1)
  assert_same_model(metrics, single, synthetic_datasets.test.images)


def test_two_workers_are_the_single_device_model(tmp_path, single_device, synthetic_datasets):
  args, single = single_device
  metrics = train_in_cluster(tmp_path, SYNTHETIC_CLI, args + ["--strategy=multi_worker"])
  assert metrics["replicas"] == 2
  assert_same_model(metrics, single, synthetic_datasets.test.images)


def test_global_batch_not_divisible_by_the_workers_is_refused(tmp_path):
  commands = cluster_commands(
    tmp_path, SYNTHETIC_CLI, SMALL_RUN + ["--strategy=multi_worker", "--batch_size=51"]
  )
  with started(commands) as processes:
    for process in processes:
      assert process.wait(timeout=RUN_TIMEOUT_S) == 2
  for _, log, _ in commands:
    assert (
      "kmnist-train: error: --batch_size=51 is the global batch and must be divisible by the 2 "
      "replicas" in log.read_text()
    )
  assert not (tmp_path / "worker0").exists() and not (tmp_path / "worker1").exists()


@pytest.mark.parametrize("dead, survivor", [(1, 0), (0, 1)], ids=["worker dies", "chief dies"])
def test_a_dead_worker_stops_the_other_with_a_clear_error(tmp_path, dead, survivor):
  long_run = ["--strategy=multi_worker", "--steps=100000", "--eval_every=1000", "--batch_size=50"]
  commands = cluster_commands(tmp_path, SYNTHETIC_CLI, long_run)
  survivor_log = commands[survivor][1]
  with started(commands) as processes:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while "Epoch 1/" not in survivor_log.read_text():  # training has started on the whole cluster
      assert all(p.poll() is None for p in processes), survivor_log.read_text()[-3000:]
      assert time.monotonic() < deadline, "the cluster never started training"
      time.sleep(0.2)
    processes[dead].kill()
    killed_at = time.monotonic()
    try:
      returncode = processes[survivor].wait(timeout=DEAD_WORKER_BOUND_S)
    except subprocess.TimeoutExpired:
      pytest.fail(f"worker {survivor} still runs {DEAD_WORKER_BOUND_S} s after worker {dead} died")
    print(
      f"worker {survivor} stopped {time.monotonic() - killed_at:.1f} s after worker {dead} was "
      "killed"
    )
  log = survivor_log.read_text()
  assert returncode == 2, log[-3000:]
  assert f"kmnist-train: error: lost /job:worker/task:{dead} of the multi-worker cluster" in log
  assert "restart all of them" in log
  assert not (tmp_path / "worker0" / "exported").exists()


@pytest.fixture(scope="module")
def real_single_device(tmp_path_factory, real_data_dir):
  return train_alone(
    tmp_path_factory.mktemp("real_single"),
    REAL_CLI,
    [f"--data_dir={real_data_dir}", "--strategy=default"],
  )


@pytest.mark.slow
def test_real_mnist_on_two_cpu_replicas(tmp_path, real_single_device, real_data_dir, real_datasets):
  # The tutorial's whole schedule (1000 steps of 100): the accuracy criterion, on the real
  # digits.
  metrics = train_alone(
    tmp_path, REAL_CLI, [f"--data_dir={real_data_dir}", "--strategy=mirrored", "--cpu_replicas=2"]
  )
  assert metrics["replicas"] == 2
  assert_same_model(metrics, real_single_device, real_datasets.test.images)


@pytest.mark.slow
def test_real_mnist_on_two_workers(tmp_path, real_single_device, real_data_dir, real_datasets):
  metrics = train_in_cluster(
    tmp_path, REAL_CLI, [f"--data_dir={real_data_dir}", "--strategy=multi_worker"]
  )
  assert metrics["replicas"] == 2
  assert_same_model(metrics, real_single_device, real_datasets.test.images)
  # The reported accuracy (evaluated on both workers' shards) is the exported model's accuracy.
  served = saved_model.predict_saved_model(metrics["saved_model_dir"], real_datasets.test.images)
  assert np.mean(served["class_id"] == real_datasets.test.labels) == pytest.approx(
    metrics["test_accuracy"], abs=1e-4
  )


# Two processes starting a cluster; the comparison itself is in test_training_distribute.py.
@pytest.mark.slow
def test_workers_started_with_different_flags_stop_naming_the_difference(tmp_path):
  commands = cluster_commands(tmp_path, SYNTHETIC_CLI, SMALL_RUN + ["--strategy=multi_worker"])
  argv, log, env = commands[1]
  commands[1] = (argv + ["--learning_rate=0.1"], log, env)  # worker 1 typed another rate
  with started(commands) as processes:
    for process in processes:
      assert process.wait(timeout=RUN_TIMEOUT_S) == 2
  for (_, log, _), me, other, mine, theirs in (
    (commands[0], "worker 0", "worker 1", 0.5, 0.1),
    (commands[1], "worker 1", "worker 0", 0.1, 0.5),
  ):
    lines = [line for line in log.read_text().splitlines() if line.startswith("kmnist-train: ")]
    assert lines == [
      f"kmnist-train: error: this worker ({me}) and {other} of the TF_CONFIG "
      f"cluster were started differently: --learning_rate is {mine} here, {theirs} there; start "
      "every worker with the same flags, the same kmnist and the same MNIST files"
    ], log.read_text()[-3000:]
    assert "Epoch 1/" not in log.read_text()  # stopped before any training step
  assert not (tmp_path / "worker0").exists() and not (tmp_path / "worker1").exists()
