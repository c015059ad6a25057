"""A short load test (the full one is `python -m benchmarks.serve`): many concurrent locust clients
against kmnist-serve on 127.0.0.1, single digits and batches of 100, then a new version written
while they run. Asserted: no request fails and the counts add up; the figures are only printed
(throughput belongs to the benchmark)."""

import shutil
import threading
import time

import pytest

from benchmarks import serve_load
from kmnist.export import saved_model

USERS = 16


@pytest.fixture(scope="module")
def server(tmp_path_factory, trained_model, synthetic_datasets):
  base = tmp_path_factory.mktemp("load") / "saved_model"
  saved_model.export_saved_model(
    trained_model, base, warmup_images=synthetic_datasets.test.images[:3]
  )
  with serve_load.ServerProcess(base, "--poll_seconds=0.2") as process:
    process.base = base
    yield process


@pytest.fixture(scope="module")
def digits(synthetic_datasets):
  return synthetic_datasets.test.images[:200]


def check(stats, batch, max_requests):
  print(f"\nbatch {batch}: {stats}")
  assert stats["errors"] == 0, stats["error_examples"]
  assert 0 < stats["requests"] <= max_requests + USERS  # users already in flight finish
  assert stats["images_per_s"] * stats["seconds"] == pytest.approx(stats["requests"] * batch)
  assert 0 < stats["p50_ms"] <= stats["p99_ms"] <= stats["max_ms"]


def test_single_digits_and_batches_without_errors(server, digits, tmp_path):
  with serve_load.RssSampler(server) as rss:
    single = serve_load.run_locust(
      server.url, digits, USERS, seconds=3, batch=1, max_requests=3000, workdir=tmp_path
    )
    batch = serve_load.run_locust(
      server.url, digits, USERS, seconds=2, batch=100, max_requests=300, workdir=tmp_path
    )
  check(single, 1, 3000)
  check(batch, 100, 300)
  memory = rss.summary()
  print(memory)
  assert memory["rss_before_mib"] > 100 and memory["rss_peak_mib"] >= memory["rss_after_mib"]


def test_a_version_written_under_load_is_served_without_a_failed_request(server, digits, tmp_path):
  results = {}
  load = threading.Thread(
    target=lambda: results.update(
      serve_load.run_locust(
        server.url, digits, USERS, seconds=5, batch=1, max_requests=5000, workdir=tmp_path
      )
    )
  )
  load.start()
  try:
    time.sleep(2.0)  # locust starts and ramps up
    version, written = serve_load.write_version(server.base, server.base / "1")
    seconds = serve_load.wait_for_version(server, version, since=written, timeout=60)
  finally:
    load.join()
  print(f"\nversion {version} served {seconds:.2f} s after it was written, under load")
  assert version == 2 and seconds is not None
  check(results, 1, 5000)
  assert "version 1 released" in server.log()
  assert not list(server.base.glob(".*"))  # the writer left no temporary behind
  shutil.rmtree(server.base / "2")
