"""A short load test (the full one, with batches, gRPC and the figures, is `python -m
benchmarks.serve`): 16 concurrent locust clients send single digits to kmnist-serve on 127.0.0.1
while a new version is written. Asserted: not one request fails, the new version is served, no
latency is pathological and the server's memory does not grow; throughput belongs to the
benchmark."""

import shutil
import threading
import time

import pytest

from benchmarks import serve_load
from kmnist.export import saved_model

# A real server under locust: end to end, in the slow suite (the swap's logic in process:
# test_serve_versions.py).
pytestmark = pytest.mark.slow

USERS = 16
# Far above normal (a p99 of 20-60 ms on 2 shared cores): only a stall or a request stuck behind the
# swap's loading would reach it.
MAX_P99_MS = 2000
# The server's RSS after the load and a swap, relative to before it: a leak per request would
# exceed it (a version's own memory is a few MiB of the ~700).
MAX_RSS_GROWTH = 0.25


@pytest.fixture(scope="module")
def server(tmp_path_factory, trained_model, synthetic_datasets):
  base = tmp_path_factory.mktemp("load") / "saved_model"
  saved_model.export_saved_model(
    trained_model, base, warmup_images=synthetic_datasets.test.images[:3]
  )
  with serve_load.ServerProcess(base, "--poll_seconds=0.2") as process:
    process.base = base
    yield process


def test_a_version_written_under_load_is_served_without_a_failed_request(
  server, synthetic_datasets, tmp_path
):
  digits, results = synthetic_datasets.test.images[:200], {}
  load = threading.Thread(
    target=lambda: results.update(
      serve_load.run_locust(
        server.url, digits, USERS, seconds=4, batch=1, max_requests=5000, workdir=tmp_path
      )
    )
  )
  with serve_load.RssSampler(server) as rss:
    load.start()
    try:
      time.sleep(1.5)  # locust starts and ramps up
      version, written = serve_load.write_version(server.base, server.base / "1")
      seconds = serve_load.wait_for_version(server, version, since=written, timeout=60)
    finally:
      load.join()
  memory = rss.summary()
  print(f"\n{results}\nversion {version} served {seconds:.2f} s after it was written; {memory}")
  assert version == 2 and seconds is not None
  assert results["errors"] == 0, results["error_examples"]
  assert results["requests"] >= USERS  # every client was answered at least once
  assert results["p99_ms"] < MAX_P99_MS
  assert memory["rss_growth"] < MAX_RSS_GROWTH
  assert "version 1 released" in server.log()
  assert not list(server.base.glob(".*"))  # the writer left no temporary behind
  shutil.rmtree(server.base / "2")
