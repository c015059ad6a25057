"""Batching off and on: single digits to the cnn at 1, 16 and 64 clients, part of
`python -m benchmarks.serve` (`--parts=batching` runs it alone, about 3 minutes).

For each setting kmnist-serve serves a cnn export (the registry's cnn, exported untrained: a
forward pass costs the same whatever the weights) and locust's clients send one real test digit
per request through TF Serving's REST :predict, back to back: requests/s, p50/p99 latency, errors,
the server's RSS before/after and its CPU. With batching on, the server runs with
--enable_batching and --batching_parameters_file (default deploy/batching.config).
"""

import os
import time
from pathlib import Path

import numpy as np

from benchmarks import serve_load

CLIENTS = (1, 16, 64)


def export_cnn(base: Path) -> Path:
  import keras

  from kmnist.export import record, saved_model
  from kmnist.models import registry

  keras.utils.set_random_seed(0)
  return saved_model.export_saved_model(
    registry.build("cnn"), base, about=record.make(registry.get("cnn"), training_flags={})
  )


def cpu_seconds(pid: int) -> float:
  fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
  return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(
  digits: np.ndarray, workdir, seconds: float, batching_file, clients=CLIENTS, modes=("off", "on")
) -> dict:
  """{"off": {clients: figures}, "on": {...}, "batching_parameters": the file's text}."""
  workdir = Path(workdir)
  base = workdir / "cnn"
  if not base.exists():
    export_cnn(base)
  figures = {"batching_parameters": Path(batching_file).read_text()}
  settings = {
    "off": [],
    "on": ["--enable_batching", f"--batching_parameters_file={batching_file}"],
  }
  for mode in modes:
    flags = settings[mode]
    with serve_load.ServerProcess(base, "--model_name=cnn", "--grpc_port=0", *flags) as server:
      serve_load.run_locust(server.url, digits, 16, 3, workdir=workdir, model_name="cnn")  # warm
      figures[mode] = {}
      for users in clients:
        cpu, start = cpu_seconds(server.process.pid), time.time()
        with serve_load.RssSampler(server) as rss:
          stats = serve_load.run_locust(
            server.url, digits, users, seconds, workdir=workdir, model_name="cnn"
          )
        stats.update(rss.summary())
        stats["server_cpu_cores"] = (cpu_seconds(server.process.pid) - cpu) / (time.time() - start)
        stats["loadavg"] = os.getloadavg()[0]
        figures[mode][users] = stats
  return figures


def table(figures: dict) -> str:
  rows = [
    "| batching | clients | requests/s | p50 ms | p99 ms | errors | server RSS before → after "
    "| server CPU |",
    "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
  ]
  for mode in ("off", "on"):
    for users, f in figures[mode].items():
      rows.append(
        f"| {mode} | {users} | {f['requests_per_s']:,.0f} | {f['p50_ms']:.1f} | "
        f"{f['p99_ms']:.1f} | {f['errors']} | {f['rss_before_mib']:.0f} → "
        f"{f['rss_after_mib']:.0f} MiB | {f['server_cpu_cores']:.2f} |"
      )
  most = max(figures["off"])
  off, on = figures["off"][most], figures["on"][most]
  rows.append(
    f"\nAt {most} clients, batching on: {on['requests_per_s'] / off['requests_per_s']:.2f}x the "
    f"unbatched requests/s, {on['errors']} errors."
  )
  return "\n".join(rows)
