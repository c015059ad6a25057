"""kmnist-train on 2 replicas (two logical CPUs), on a 2-worker cluster (two processes on
127.0.0.1) and on 2 workers of a local Ray, each against the single-device run with the same global
batch and seed.

Each run is a fresh process: logical devices and a cluster's collectives are fixed when TensorFlow
starts. The tests train on the synthetic digits (tests/synthetic_cli.py), but for Ray's, whose
workers are processes Ray starts, on the real MNIST; the same comparisons on the real MNIST with the
tutorial's schedule, with their figures, are `python -m benchmarks.distribute`. Every process is
bounded by a timeout and killed in `finally`.
"""

import json
import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest
import synthetic_cli
from absl import flags

from benchmarks.distribute import (
  REAL_CLI,
  RUN_TIMEOUT_S,
  cluster_commands,
  exported_logits,
  outputs_of,
  ray_env,
  started,
  train_alone,
  train_in_cluster,
  train_on_ray,
)
from kmnist.cli import common
from kmnist.cli import train as train_cli
from kmnist.training import train

SYNTHETIC_CLI = [synthetic_cli.PATH]
SMALL_RUN = [
  "--steps=40",
  "--eval_every=20",
  "--batch_size=50",
  "--steps_per_execution=10",
  "--tflite=float",
  "--novisualize",
]
# A dead worker must stop the others within this bound. TensorFlow's coordination service declares a
# worker dead after 10 s without heartbeats (its default, checked every second); the rest is
# unwinding on a loaded machine.
DEAD_WORKER_BOUND_S = 60


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
# rows of the same augmented global batch. The fast suite mirrors the softmax regression (plain SGD:
# exact to float rounding) and the CNN (Adam, synchronized batch norm, augmentation) over two CPUs;
# clusters of processes, and the MLP (Adam as the CNN: no path of its own), are in the slow suite.
MODEL_RUNS = {
  "softmax": [],
  "mlp": ["--model=mlp", "--warmup_steps=10"],
  "cnn": ["--model=cnn", "--warmup_steps=10", "--augment"],
}


def models(*names: str, slow=()) -> list:
  """Parameters for `single_device`: one xdist worker per model trains its one-device run."""
  return [
    pytest.param(
      name,
      marks=[pytest.mark.xdist_group(f"distribute_{name}")]
      + ([pytest.mark.slow] if name in slow else []),
    )
    for name in names
  ]


def train_here(run_dir, args: list[str], datasets=None) -> dict:
  """The one-device run the others are held to, in this process: the same command's `run`."""
  fv = flags.FlagValues()
  train_cli.define_flags(fv)
  fv(["kmnist-train", *args, "--strategy=default", *outputs_of(run_dir)])
  train.run(common.config_from_flags(fv), datasets_override=datasets)
  return json.loads((run_dir / "run" / "metrics.json").read_text())


@pytest.fixture(scope="module")
def single_device(request, tmp_path_factory, synthetic_datasets):
  """The one-device run on the synthetic digits synthetic_cli.py trains on."""
  args = SMALL_RUN + MODEL_RUNS[request.param]
  return args, train_here(tmp_path_factory.mktemp("single"), args, synthetic_datasets)


@pytest.mark.parametrize("single_device", models(*MODEL_RUNS, slow=("mlp", "cnn")), indirect=True)
def test_mirrored_on_two_cpus_is_the_single_device_model(
  tmp_path, single_device, synthetic_datasets
):
  args, single = single_device
  metrics = train_alone(tmp_path, SYNTHETIC_CLI, args + ["--strategy=mirrored", "--cpu_replicas=2"])
  assert (metrics["replicas"], single["replicas"]) == (2, 1)
  assert_same_model(metrics, single, synthetic_datasets.test.images)


@pytest.mark.slow  # two processes forming a cluster; the fast suite mirrors over two CPUs above
@pytest.mark.parametrize("single_device", models("softmax", "cnn"), indirect=True)  # MLP: no path
def test_two_workers_are_the_single_device_model(tmp_path, single_device, synthetic_datasets):
  args, single = single_device
  metrics = train_in_cluster(tmp_path, SYNTHETIC_CLI, args + ["--strategy=multi_worker"])
  assert metrics["replicas"] == 2
  assert_same_model(metrics, single, synthetic_datasets.test.images)


@pytest.mark.slow  # a cluster's start; the check itself: test_training_distribute.py
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


@pytest.mark.slow  # a cluster and TensorFlow's 10 s heartbeat timeout
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


# Ray's workers load the real MNIST (the synthetic digits cannot be handed to processes Ray starts):
# the softmax regression for the tutorial's exactness, a short CNN run for Adam, synchronized batch
# norm and augmentation. Each run starts a local Ray of its own, as kmnist-train does without
# --ray_address; one xdist worker runs them in turn.
RAY_RUN = ["--tflite=float", "--novisualize"]
RAY_MODEL_RUNS = {
  "softmax": ["--steps=100", "--eval_every=50"],
  "cnn": ["--model=cnn", "--steps=20", "--eval_every=10", "--warmup_steps=5", "--augment"],
}


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
@pytest.mark.parametrize("model", RAY_MODEL_RUNS)
def test_two_ray_workers_are_the_single_device_model(tmp_path, model, real_data_dir, real_datasets):
  args = [*RAY_RUN, *RAY_MODEL_RUNS[model], f"--data_dir={real_data_dir}"]
  single = train_here(tmp_path / "single", args)
  (tmp_path / "ray").mkdir()
  metrics = train_on_ray(tmp_path / "ray", REAL_CLI, args)
  assert (metrics["replicas"], metrics["config"]["ray_workers"]) == (2, 2)
  assert metrics["config"]["strategy"] == "multi_worker"
  assert_same_model(metrics, single, real_datasets.test.images)


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_a_lost_ray_worker_ends_the_run_in_one_line(tmp_path, real_data_dir):
  long_run = [
    "--ray_workers=2",
    "--steps=100000",
    "--eval_every=1000",
    f"--data_dir={real_data_dir}",
  ]
  log = tmp_path / "train.log"
  with started([(REAL_CLI + long_run + outputs_of(tmp_path), log, ray_env(tmp_path))]) as (
    process,
  ):
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not (found := re.search(r"Ray worker 1 of 2: pid (\d+) on (\S+)", log.read_text())) or (
      "Epoch 1/" not in log.read_text()  # training has started on both workers
    ):
      assert process.poll() is None, log.read_text()[-3000:]
      assert time.monotonic() < deadline, "the Ray workers never started training"
      time.sleep(0.2)
    os.kill(int(found[1]), signal.SIGKILL)
    killed_at = time.monotonic()
    try:
      returncode = process.wait(timeout=DEAD_WORKER_BOUND_S)
    except subprocess.TimeoutExpired:
      pytest.fail(f"kmnist-train still runs {DEAD_WORKER_BOUND_S} s after its Ray worker 1 died")
    print(
      f"kmnist-train stopped {time.monotonic() - killed_at:.1f} s after Ray worker 1 was killed"
    )
  text = log.read_text()
  assert returncode == 2, text[-3000:]
  # Ray's health check and the chief's TensorFlow race to notice: either names Ray worker 1.
  (line,) = [line for line in text.splitlines() if line.startswith("kmnist-train: ")]
  assert re.fullmatch(
    rf"kmnist-train: error: lost Ray worker 1 of 2 \((pid {found[1]} on {re.escape(found[2])}: "
    r"ActorDiedError|TensorFlow: UnavailableError)\), so training cannot go on; run the same "
    r"command again \(a cluster run starts at step 0\)",
    line,
  ), text[-3000:]
  assert "kmnist" not in "".join(re.findall(r"Traceback.*\n.*\n.*", text))  # none of kmnist's
  assert not (tmp_path / "exported").exists()
