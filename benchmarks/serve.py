"""kmnist-serve under load: `python -m benchmarks.serve` (about 5 minutes on 2 cores).

Prints a table and writes the figures as JSON (--out). On this machine, load generator included:
  * the in-process floor: the served SavedModel's signature called directly (no JSON, no HTTP);
  * kmnist-serve on 127.0.0.1 under headless locust, --users concurrent clients sending real test
    digits through TF Serving's REST :predict, one per request and 100 per request: requests/s,
    images/s, p50/p99 latency, errors, the server's RSS before/after and its CPU;
  * the same single-digit load while a new version is written under the model base: seconds until
    it is served, and the run's figures;
  * where the time of a batch-100 request goes: JSON parsing, the input checks, the model, the
    response, JSON writing (each measured in process on the same body), kserve's own Prometheus
    timings from the server, and the rest (HTTP, uvicorn/FastAPI/kserve routing, waiting);
  * batching off and on: single digits to the cnn at 1, 16 and 64 clients (serve_batching.py).
  * the soak (serve_soak.py): 10 minutes of mixed traffic while the server is operated;
  * the flood (serve_soak.py): the probes' latency while 32 clients flood the page's endpoint.
--parts picks among "load" (the first four), "batching", "soak" and "flood"; the default
is load and batching; `--parts=soak --out=runs/serve_soak.json` runs the soak alone.
"""

import json
import os
import re
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from absl import app, flags

from benchmarks import serve_batching, serve_load, stamp

FLAGS = flags.FLAGS
flags.DEFINE_string(
  "data_dir",
  os.path.join("~", "tensorflow_datasets"),
  "TFDS data directory (MNIST is prepared there if needed).",
)
flags.DEFINE_string("model", None, "SavedModel version directory to serve; default: the reference.")
flags.DEFINE_string(
  "out", "runs/serve.json", "Where to write the figures as JSON (docs.generate publishes it)."
)
flags.DEFINE_integer("users", 16, "Concurrent clients.")
flags.DEFINE_float("seconds", 20, "Length of each load run.")
flags.DEFINE_integer("max_requests", 100_000, "Each load run stops after this many requests.")
flags.DEFINE_list(
  "parts",
  ["load", "batching"],
  "Which measurements: load, batching, soak (10 minutes), flood (the last two not by default).",
)
flags.DEFINE_float("soak_seconds", 600, "Length of the soak (--parts=soak).")
flags.DEFINE_string(
  "batching_parameters_file",
  "deploy/batching.config",
  "TF Serving's BatchingParameters for the batching-on runs.",
)


def in_process_floor(servable, digits: np.ndarray, seconds: float = 3.0) -> dict:
  """The served signature called directly: single digits and batches of 100."""
  signature = servable.signature(None)
  figures = {}
  for batch in (1, 100):
    inputs = [digits[i : i + batch] for i in range(0, len(digits) - batch + 1, batch)]
    for x in inputs[:20]:
      servable.run(signature, x)  # warm
    latencies, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds:
      t = time.perf_counter()
      servable.run(signature, inputs[len(latencies) % len(inputs)])
      latencies.append(time.perf_counter() - t)
    latencies = np.array(latencies) * 1000
    figures[f"batch_{batch}"] = {
      "calls_per_s": len(latencies) / (time.perf_counter() - start),
      "images_per_s": batch * len(latencies) / (time.perf_counter() - start),
      "p50_ms": float(np.percentile(latencies, 50)),
      "p99_ms": float(np.percentile(latencies, 99)),
    }
  return figures


def request_breakdown(servable, digits: np.ndarray, batch: int, repeats: int = 200) -> dict:
  """Milliseconds per request of each step the server runs, on one real body, in process."""
  import orjson

  from kmnist.serve.protocols import tf_serving_rest

  body = json.dumps(
    {"signature_name": "serving_default", "instances": digits[:batch].tolist()}
  ).encode()
  steps = {}

  def timed(name, function, *args):
    function(*args)
    start = time.perf_counter()
    for _ in range(repeats):
      result = function(*args)
    steps[name] = (time.perf_counter() - start) / repeats * 1000
    return result

  parsed = timed("json_parse", orjson.loads, body)
  request = timed("input_checks", tf_serving_rest.parse_predict, parsed, servable, 10_000)
  outputs = timed("model", servable.run, request.signature, request.array)
  response = timed("response", tf_serving_rest.predict_response, outputs, request.format)
  timed("json_write", lambda r: orjson.dumps(r, option=orjson.OPT_SERIALIZE_NUMPY), response)
  steps["request_bytes"] = len(body)
  steps["response_bytes"] = len(orjson.dumps(response))
  return steps


def kserve_timings(url: str) -> dict:
  """kserve's Prometheus histograms: (sum seconds, count) per step of its model pipeline."""
  text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
  figures = {}
  for step in ("preprocess", "predict", "postprocess"):
    total = re.search(rf"request_{step}_seconds_sum\{{[^}}]*\}} ([0-9.e+-]+)", text)
    count = re.search(rf"request_{step}_seconds_count\{{[^}}]*\}} ([0-9.e+-]+)", text)
    figures[step] = (float(total.group(1)) if total else 0.0, float(count.group(1)) if count else 0)
  return figures


def cpu_seconds(pid: int) -> float:
  fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
  return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_run(server, digits, batch: int, workdir, swap_from=None) -> dict:
  """One locust run with the server's RSS, CPU and kserve timings; optionally a version swap."""
  before_timings, cpu_before = kserve_timings(server.url), cpu_seconds(server.process.pid)
  swap = {}
  with serve_load.RssSampler(server) as rss:
    start = time.time()
    if swap_from is None:
      stats = serve_load.run_locust(
        server.url, digits, FLAGS.users, FLAGS.seconds, batch, FLAGS.max_requests, workdir
      )
    else:
      import threading

      result = {}
      load = threading.Thread(
        target=lambda: result.update(
          serve_load.run_locust(
            server.url, digits, FLAGS.users, FLAGS.seconds, batch, FLAGS.max_requests, workdir
          )
        )
      )
      load.start()
      time.sleep(FLAGS.seconds / 3)
      version, written = serve_load.write_version(server.base, swap_from)
      swap = {
        "version": version,
        "seconds_to_served": serve_load.wait_for_version(server, version, written, 60),
      }
      load.join()
      stats = result
    wall = time.time() - start
  after_timings = kserve_timings(server.url)
  stats.update(rss.summary())
  stats["server_cpu_cores"] = (cpu_seconds(server.process.pid) - cpu_before) / wall
  stats["kserve_ms"] = {
    step: 1000
    * (after_timings[step][0] - before_timings[step][0])
    / max(1, after_timings[step][1] - before_timings[step][1])
    for step in after_timings
  }
  stats.update(swap)
  return stats


def grpc_batch_run(server, digits: np.ndarray, clients: int = 8, seconds: float = 10) -> dict:
  """Batches of 100 through TF Serving's gRPC Predict (binary tensors, no JSON), from `clients`
  threads of this process: what the same server does when JSON is taken out."""
  import threading

  import grpc
  import tensorflow as tf
  from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

  requests = []
  for i in range(0, 2000, 100):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "kmnist"
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(digits[i : i + 100]))
    requests.append(request)
  latencies, errors, stop = [], [], threading.Event()

  def client(k):
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      n = k
      while not stop.is_set():
        start = time.perf_counter()
        try:
          stub.Predict(requests[n % len(requests)], timeout=30)
          latencies.append(time.perf_counter() - start)
        except grpc.RpcError as e:
          errors.append(e.code().name)
        n += 1

  threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
  start = time.perf_counter()
  for thread in threads:
    thread.start()
  time.sleep(seconds)
  stop.set()
  for thread in threads:
    thread.join()
  wall = time.perf_counter() - start
  latencies = np.array(latencies) * 1000
  return {
    "clients": clients,
    "requests": len(latencies),
    "errors": len(errors),
    "requests_per_s": len(latencies) / wall,
    "images_per_s": 100 * len(latencies) / wall,
    "p50_ms": float(np.percentile(latencies, 50)),
    "p99_ms": float(np.percentile(latencies, 99)),
  }


def table(figures: dict) -> str:
  rows = [
    "| run | users | requests/s | images/s | p50 ms | p99 ms | errors | RSS before→after "
    "MiB | server CPU |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ]
  for name in ("single", "batch_100", "single_during_swap"):
    f = figures["load"][name]
    rows.append(
      f"| {name} | {f['users']} | {f['requests_per_s']:,.0f} | {f['images_per_s']:,.0f} "
      f"| {f['p50_ms']:.1f} | {f['p99_ms']:.1f} | {f['errors']} | "
      f"{f['rss_before_mib']:.0f}→{f['rss_after_mib']:.0f} "
      f"({100 * f['rss_growth']:+.1f} %) | {f['server_cpu_cores']:.2f} |"
    )
  g = figures["load"]["grpc_batch_100"]
  rows.append(
    f"| batch_100 over TF Serving gRPC | {g['clients']} | {g['requests_per_s']:,.0f} | "
    f"{g['images_per_s']:,.0f} | {g['p50_ms']:.1f} | {g['p99_ms']:.1f} | {g['errors']} | | |"
  )
  swap = figures["load"]["single_during_swap"]
  rows.append(
    f"\nNew version {swap['version']} served {swap['seconds_to_served']:.2f} s after it "
    f"was written, under load."
  )
  rows.append(
    "\n| in process (the floor) | calls/s | images/s | p50 ms | p99 ms |\n"
    "| --- | ---: | ---: | ---: | ---: |"
  )
  for name, f in figures["in_process"].items():
    rows.append(
      f"| signature, {name.replace('_', ' ')} | {f['calls_per_s']:,.0f} | "
      f"{f['images_per_s']:,.0f} | {f['p50_ms']:.2f} | {f['p99_ms']:.2f} |"
    )
  rows.append(
    "\n| where a request's time goes (ms) | 1 image | 100 images |\n| --- | ---: | ---: |"
  )
  single, batch = figures["breakdown"]["batch_1"], figures["breakdown"]["batch_100"]
  for step in ("json_parse", "input_checks", "model", "response", "json_write"):
    rows.append(f"| {step.replace('_', ' ')} | {single[step]:.3f} | {batch[step]:.3f} |")
  for name in ("single", "batch_100"):
    ks = figures["load"][name]["kserve_ms"]
    rows.append(
      f"\nkserve's timings during the {name} run (ms per request): preprocess "
      f"{ks['preprocess']:.3f}, predict {ks['predict']:.3f}, postprocess {ks['postprocess']:.3f}"
    )
  return "\n".join(rows)


def main(argv):
  del argv
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import tensorflow as tf

  from kmnist.cli.serve import default_model_base
  from kmnist.data import mnist
  from kmnist.serve.protocols import tf_serving_grpc

  # The floor runs with kmnist-serve's default threading (one thread each), as the server does.
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  digits = mnist.load(os.path.expanduser(FLAGS.data_dir)).test.images
  figures = {
    "stamp": stamp.stamp(),
    "machine": {"cpus": os.cpu_count(), "loadavg_before": os.getloadavg()},
  }
  tables = []
  if "load" in FLAGS.parts:
    figures.update(load_figures(digits, tf_serving_grpc, default_model_base))
    tables.append(table(figures))
  if "batching" in FLAGS.parts:
    with tempfile.TemporaryDirectory() as tmp:
      figures["batching"] = serve_batching.run(
        digits, tmp, FLAGS.seconds, FLAGS.batching_parameters_file
      )
    tables.append(serve_batching.table(figures["batching"]))
  if "soak" in FLAGS.parts:
    from benchmarks import serve_soak
    from kmnist.predict.model_paths import reference_export

    with tempfile.TemporaryDirectory() as tmp:
      figures["soak"] = serve_soak.run(
        digits[:500],
        tmp,
        FLAGS.soak_seconds,
        os.path.expanduser(FLAGS.data_dir),
        reference_export(),
      )
    tables.append(serve_soak.table(figures["soak"]))
  if "flood" in FLAGS.parts:
    from benchmarks import serve_soak
    from kmnist.predict.model_paths import reference_export

    with tempfile.TemporaryDirectory() as tmp:
      figures["flood"] = serve_soak.flood(digits, tmp, reference_export())
    tables.append(serve_soak.flood_table(figures["flood"]))
  figures["machine"]["loadavg_after"] = os.getloadavg()
  out = Path(FLAGS.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(figures, indent=2) + "\n")
  print("\n\n".join(tables))
  print(
    f"\nload average before/after: {figures['machine']['loadavg_before'][0]:.2f} / "
    f"{figures['machine']['loadavg_after'][0]:.2f}; figures in {out}"
  )


def load_figures(digits, tf_serving_grpc, default_model_base) -> dict:
  """The reference export in process and under load (the parts before batching)."""
  source = Path(FLAGS.model) if FLAGS.model else default_model_base() / "1"
  servable = tf_serving_grpc.load_and_warm_up(source, 1)
  figures = {
    "in_process": in_process_floor(servable, digits),
    "breakdown": {f"batch_{b}": request_breakdown(servable, digits, b) for b in (1, 100)},
  }
  del servable
  with tempfile.TemporaryDirectory() as tmp:
    base = Path(tmp) / "saved_model"
    shutil.copytree(source, base / "1")
    with serve_load.ServerProcess(base, "--poll_seconds=1") as server:
      server.base = base
      serve_load.run_locust(server.url, digits, FLAGS.users, 3, 1, workdir=tmp)  # warm
      figures["load"] = {
        "single": load_run(server, digits, 1, tmp),
        "batch_100": load_run(server, digits, 100, tmp),
        "single_during_swap": load_run(server, digits, 1, tmp, swap_from=source),
        "grpc_batch_100": grpc_batch_run(server, digits, seconds=min(10, FLAGS.seconds)),
      }
  return figures


if __name__ == "__main__":
  app.run(main)
