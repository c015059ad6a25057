"""The load-test harness for kmnist-serve, shared by `python -m benchmarks.serve` and the tests.

* ServerProcess: `kmnist-serve` as a subprocess on free ports, its readiness, its RSS;
* run_locust: headless locust (benchmarks/serve_locustfile.py) against it, bounded in time and
  requests, every request's latency recorded; summarize: throughput, p50/p99, errors;
* write_version: a new version written the way kmnist-train writes one (complete in a hidden
  temporary directory, then renamed), and wait_for_version: how long until the server serves it.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from kmnist.util import files
from kmnist.util.files import existing_versions

LOCUSTFILE = Path(__file__).resolve().parent / "serve_locustfile.py"


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def http_json(url: str, body=None, timeout: float = 30, context=None):
  """(status, parsed JSON) of a GET, or of a POST of `body` (bytes, or an object sent as JSON);
  `context`: the ssl.SSLContext of an https server."""
  if body is not None and not isinstance(body, bytes):
    body = json.dumps(body).encode()
  headers = {"Content-Type": "application/json"} if body is not None else {}
  request = urllib.request.Request(url, data=body, headers=headers)
  try:
    with urllib.request.urlopen(request, timeout=timeout, context=context) as reply:
      return reply.status, json.loads(reply.read())
  except urllib.error.HTTPError as e:
    return e.code, json.loads(e.read() or b"null")


class ServerProcess:
  """`python -m kmnist.cli.serve` on free ports; a context manager that always stops it. `model`
  is --model's value (None: none, e.g. with --model_config_file among `flags`)."""

  def __init__(self, model, *flags, log_path=None, env=None, ssl_context=None):
    self.http_port, self.grpc_port = free_port(), free_port()
    self.ssl_context = ssl_context  # one that trusts the server's certificate, for --ssl_certfile
    self.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{self.http_port}"
    self.log_path = Path(log_path or tempfile.mkstemp(prefix="kmnist-serve-", suffix=".log")[1])
    self.command = [
      sys.executable,
      "-m",
      "kmnist.cli.serve",
      *([f"--model={model}"] if model is not None else []),
      f"--http_port={self.http_port}",
      f"--grpc_port={self.grpc_port}",
      *flags,
    ]
    self.env = env
    self.process = None

  def __enter__(self):
    self.start()
    return self

  def __exit__(self, *exc):
    self.stop()

  def start(self, timeout: float = 120) -> None:
    with open(self.log_path, "wb") as log:
      self.process = subprocess.Popen(
        self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env
      )
    try:
      self._wait_ready(timeout)
    except BaseException:  # never leave a server behind, whatever went wrong while waiting
      self.stop()
      raise

  def _wait_ready(self, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
      if self.process.poll() is not None:
        raise RuntimeError(f"kmnist-serve exited with {self.process.returncode}:\n{self.log()}")
      try:
        if http_json(f"{self.url}/v2/health/ready", timeout=2, context=self.ssl_context)[0] == 200:
          return
      except OSError:
        pass
      time.sleep(0.1)
    raise RuntimeError(f"kmnist-serve was not ready within {timeout} s:\n{self.log()}")

  def stop(self, timeout: float = 30) -> int | None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout`; returns the exit code."""
    if self.process is None or self.process.poll() is not None:
      return None if self.process is None else self.process.returncode
    self.process.send_signal(signal.SIGTERM)
    try:
      return self.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
      self.process.kill()
      self.process.wait()
      return None

  def log(self) -> str:
    return self.log_path.read_text(errors="replace")

  def rss_bytes(self) -> int:
    for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")

  def served_version(self, model_name: str = "kmnist") -> int | None:
    status, body = http_json(f"{self.url}/v1/models/{model_name}", timeout=5)
    available = (
      [int(s["version"]) for s in body.get("model_version_status", []) if s["state"] == "AVAILABLE"]
      if status == 200
      else []
    )
    return max(available) if available else None


class RssSampler:
  """The server's RSS every `interval` seconds on a thread: before, peak, last."""

  def __init__(self, server: ServerProcess, interval: float = 0.2):
    self.server, self.interval = server, interval
    self.samples = []
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True)

  def __enter__(self):
    self.samples.append(self.server.rss_bytes())
    self._thread.start()
    return self

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join()
    self.samples.append(self.server.rss_bytes())

  def _run(self):
    while not self._stop.wait(self.interval):
      self.samples.append(self.server.rss_bytes())

  def summary(self) -> dict:
    before, after, peak = self.samples[0], self.samples[-1], max(self.samples)
    return {
      "rss_before_mib": before / 2**20,
      "rss_after_mib": after / 2**20,
      "rss_peak_mib": peak / 2**20,
      "rss_growth": after / before - 1,
    }


def run_locust(
  url: str,
  digits: np.ndarray,
  users: int,
  seconds: float,
  batch: int = 1,
  max_requests: int = 0,
  workdir=None,
  model_name: str = "kmnist",
) -> dict:
  """Runs headless locust against `url`; returns summarize() of every request it made."""
  workdir = Path(workdir or tempfile.mkdtemp(prefix="kmnist-load-"))
  digits_path, out_path = workdir / "digits.npy", workdir / f"records-{time.time_ns()}.json"
  np.save(digits_path, np.asarray(digits, np.uint8))
  env = dict(
    os.environ,
    KMNIST_LOAD_DIGITS=str(digits_path),
    KMNIST_LOAD_OUT=str(out_path),
    KMNIST_LOAD_BATCH=str(batch),
    KMNIST_LOAD_MAX_REQUESTS=str(max_requests),
    KMNIST_LOAD_MODEL=model_name,
  )
  command = [
    sys.executable,
    "-m",
    "locust",
    "-f",
    str(LOCUSTFILE),
    "--headless",
    "--host",
    url,
    "--users",
    str(users),
    "--spawn-rate",
    str(users),
    "--run-time",
    f"{seconds:g}s",
    "--stop-timeout",
    "10",
    "--only-summary",
    "--loglevel",
    "WARNING",
  ]
  result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 120)
  if not out_path.is_file():
    raise RuntimeError(
      f"locust wrote no records (exit {result.returncode}):\n"
      f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
  data = json.loads(out_path.read_text())
  return summarize(data["records"], batch, users)


def summarize(records: list, batch: int, users: int) -> dict:
  """Throughput over the run's wall time (first start to last end), latency percentiles, errors."""
  if not records:
    return {"requests": 0, "errors": 0, "users": users, "batch": batch}
  starts = np.array([r[0] for r in records], np.float64)
  latencies = np.array([r[1] for r in records], np.float64)  # ms
  ok = np.array([r[2] for r in records], bool)
  wall = float((starts + latencies / 1000).max() - starts.min())
  errors = [r[3] for r in records if not r[2]]
  return {
    "users": users,
    "batch": batch,
    "requests": len(records),
    "errors": len(errors),
    "error_examples": sorted(set(errors))[:3],
    "seconds": wall,
    "requests_per_s": len(records) / wall,
    "images_per_s": int(ok.sum()) * batch / wall,
    "p50_ms": float(np.percentile(latencies, 50)),
    "p90_ms": float(np.percentile(latencies, 90)),
    "p99_ms": float(np.percentile(latencies, 99)),
    "max_ms": float(latencies.max()),
  }


def write_version(base, source_version_dir) -> tuple[int, float]:
  """Writes the next version under `base` as a copy of `source_version_dir`, the way kmnist-train
  writes one (kmnist.util.files.atomic_directory: complete, then renamed).

  Returns (version, time).
  """
  base = Path(base)
  versions = existing_versions(base)
  version = versions[-1] + 1 if versions else 1
  with files.atomic_directory(base / str(version)) as tmp:
    shutil.copytree(source_version_dir, tmp, dirs_exist_ok=True)
  return version, time.time()


def wait_for_version(
  server: ServerProcess,
  version: int,
  since: float,
  timeout: float = 60,
  model_name: str = "kmnist",
) -> float | None:
  """Seconds from `since` (a time.time()) until the server reports `version` AVAILABLE; None if
  that takes more than `timeout`."""
  while time.time() - since < timeout:
    if server.served_version(model_name) == version:
      return time.time() - since
    time.sleep(0.05)
  return None
