"""kmnist-train on one device, on 2 replicas (two logical CPUs) and on a 2-worker cluster (two
processes on 127.0.0.1), on the real MNIST with the tutorial's schedule: `python -m
benchmarks.distribute` (a few minutes).

Prints README's "Scaling out" table: each run's test accuracy, wall time and the largest difference
of its exported logits from the one-device run's on the 10,000 test digits; exits 1 if a strategy
did not train the one-device model (logits within 1e-4: plain SGD carries float rounding through
linearly). The tests (tests/test_training_distribute_runs.py) run the same processes on synthetic
digits, with the helpers below.
"""

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import app, flags, logging

from kmnist.export import saved_model

REAL_CLI = ["-m", "kmnist.cli.train"]
RUN_TIMEOUT_S = 600  # generous: 2 shared cores; a hang fails instead of blocking
MAX_LOGIT_DIFF = 1e-4

flags.DEFINE_string("data_dir", os.path.join("~", "tensorflow_datasets"), "TFDS data directory.")


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
    if process.wait(timeout=RUN_TIMEOUT_S) != 0:
      raise RuntimeError(log.read_text()[-3000:])
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
      if process.wait(timeout=max(1, deadline - time.monotonic())) != 0:
        raise RuntimeError(log.read_text()[-3000:])
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


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # TFDS's and TensorFlow's INFO lines
  from kmnist.data import mnist

  data_dir = os.path.expanduser(flags.FLAGS.data_dir)
  test = mnist.load(data_dir).test  # prepared once, before the workers read it together
  runs = {
    "kmnist-train --strategy=default": ("alone", ["--strategy=default"]),
    "kmnist-train --strategy=mirrored --cpu_replicas=2": (
      "alone",
      ["--strategy=mirrored", "--cpu_replicas=2"],
    ),
    "2 workers --strategy=multi_worker on 127.0.0.1": ("cluster", ["--strategy=multi_worker"]),
  }
  rows, single, same = [], None, True
  with tempfile.TemporaryDirectory(prefix="kmnist-distribute-") as scratch:
    for i, (name, (how, args)) in enumerate(runs.items()):
      run_dir = Path(scratch) / str(i)
      run_dir.mkdir()
      start = time.perf_counter()
      train = train_alone if how == "alone" else train_in_cluster
      metrics = train(run_dir, REAL_CLI, [f"--data_dir={data_dir}", *args])
      seconds = time.perf_counter() - start
      logits = exported_logits(metrics, test.images)
      single = logits if single is None else single
      diff = float(np.max(np.abs(logits - single)))
      same &= diff <= MAX_LOGIT_DIFF
      rows.append(f"| `{name}` | {metrics['test_accuracy']:.4f} | {seconds:.0f} s | {diff:.1g} |")
  print("| run | test accuracy | time | exported logits vs one device |\n| --- | --- | --- | --- |")
  print("\n".join(rows))
  return 0 if same else 1


if __name__ == "__main__":
  app.run(main)
