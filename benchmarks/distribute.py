"""kmnist-train on one device, on 2 replicas (two logical CPUs), on a hand-started 2-worker cluster
(two processes on 127.0.0.1) and on 2 workers of a local Ray (`--ray_workers=2`), on the real MNIST
with the tutorial's schedule: `python -m benchmarks.distribute` (a few minutes).

Prints the scaling-out table and writes it as JSON (`--out`, stamped: date, commit, processor,
command, load average; docs/benchmarks/distribute.md shows it): each run's test accuracy, wall time
and the largest difference of its exported logits from the one-device run's on the 10,000 test
digits; exits 1 if a run did not train the one-device model (logits within 1e-4: plain SGD carries
float rounding through linearly). The tests (tests/test_training_distribute_runs.py) run the same
processes, with the helpers below.
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

from benchmarks import stamp
from kmnist.export import saved_model

REAL_CLI = ["-m", "kmnist.cli.train"]
RUN_TIMEOUT_S = 600  # generous: 2 shared cores; a hang fails instead of blocking
MAX_LOGIT_DIFF = 1e-4


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


def ray_env(tmp_path: Path) -> dict:
  """A kmnist-train's environment for a local Ray: its sockets under /tmp (their paths must stay
  short; Ray would take TMPDIR's)."""
  return dict(worker_env(tmp_path, None), RAY_TMPDIR="/tmp")


def train_on_ray(tmp_path: Path, cli: list[str], args: list[str], workers: int = 2) -> dict:
  """kmnist-train --ray_workers on a local Ray; checks that only worker 0 left outputs (every worker
  shares the run's directories on one machine), returns its metrics.json."""
  log = tmp_path / "train.log"
  command = cli + args + [f"--ray_workers={workers}"] + outputs_of(tmp_path)
  with started([(command, log, ray_env(tmp_path))]) as (process,):
    if process.wait(timeout=RUN_TIMEOUT_S) != 0:
      raise RuntimeError(log.read_text()[-3000:])
  text = log.read_text()
  assert all(f"Ray worker {i} of {workers}: pid" in text for i in range(workers)), text[-3000:]
  assert sorted(p.name for p in (tmp_path / "exported" / "saved_model").iterdir()) == ["1"]
  # The other workers' scratch exports and every worker's scratch checkpoints, removed. (Ray ends
  # its workers without Python's exit handlers, so autograph's own temporary files stay.)
  assert [p.name for p in (tmp_path / "tmp").iterdir() if p.name.startswith("kmnist-")] == []
  return json.loads((tmp_path / "run" / "metrics.json").read_text())


def exported_logits(metrics: dict, images: np.ndarray) -> np.ndarray:
  return saved_model.predict_saved_model(metrics["saved_model_dir"], images)["logits"]


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # TFDS's and TensorFlow's INFO lines
  from kmnist.data import mnist

  figures = {"stamp": stamp.stamp(), "rows": []}
  data_dir = os.path.expanduser(flags.FLAGS.data_dir)
  test = mnist.load(data_dir).test  # prepared once, before the workers read it together
  single = None
  with tempfile.TemporaryDirectory(prefix="kmnist-distribute-") as scratch:
    for i, (name, train, args) in enumerate(RUNS):
      run_dir = Path(scratch) / str(i)
      run_dir.mkdir()
      start = time.perf_counter()
      metrics = train(run_dir, REAL_CLI, [f"--data_dir={data_dir}", *args])
      seconds = time.perf_counter() - start
      logits = exported_logits(metrics, test.images)
      single = logits if single is None else single
      figures["rows"].append(
        {
          "run": name,
          "test_accuracy": metrics["test_accuracy"],
          "seconds": round(seconds, 1),
          "max_logit_difference": float(np.max(np.abs(logits - single))),
        }
      )
  figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
  Path(flags.FLAGS.out).parent.mkdir(parents=True, exist_ok=True)
  Path(flags.FLAGS.out).write_text(json.dumps(figures, indent=2) + "\n")
  print(table(figures))
  same = all(row["max_logit_difference"] <= MAX_LOGIT_DIFF for row in figures["rows"])
  return 0 if same else 1


# (what the table calls the run, how it is started, its flags beside --data_dir)
RUNS = [
  ("one device: `kmnist-train --strategy=default`", train_alone, ["--strategy=default"]),
  (
    "2 replicas on one CPU: `kmnist-train --strategy=mirrored --cpu_replicas=2`",
    train_alone,
    ["--strategy=mirrored", "--cpu_replicas=2"],
  ),
  (
    "2 workers started by hand on 127.0.0.1, each `kmnist-train --strategy=multi_worker` with its "
    "`TF_CONFIG`",
    train_in_cluster,
    ["--strategy=multi_worker"],
  ),
  ("2 workers of a local Ray: `kmnist-train --ray_workers=2`", train_on_ray, []),
]


def table(figures: dict) -> str:
  """The runs as a Markdown table (the first is the one-device run the others are held to), and the
  load average when they ended."""
  lines = [
    "| run | test accuracy | wall time | exported logits vs one device |",
    "| --- | ---: | ---: | --- |",
  ]
  for i, row in enumerate(figures["rows"]):
    diff = f"max difference {row['max_logit_difference']:.1g}" if i else "(the reference)"
    lines.append(f"| {row['run']} | {row['test_accuracy']:.4f} | {row['seconds']:.0f} s | {diff} |")
  after = ", ".join(f"{x:.2f}" for x in figures["load_average_after"])
  lines += [
    "",
    f"Load average (1, 5, 15 min) at the end: {after}. A wall time is the whole command's, "
    "start-up included (a Ray run's includes starting Ray and its workers).",
  ]
  return "\n".join(lines)


if __name__ == "__main__":
  # Defined here, not on import: the tests and the docs generator import this module's helpers and
  # its table() beside other benchmarks that define flags of the same names.
  flags.DEFINE_string("data_dir", os.path.join("~", "tensorflow_datasets"), "TFDS data directory.")
  flags.DEFINE_string("out", "runs/distribute.json", "Where to write the figures as JSON.")
  app.run(main)
