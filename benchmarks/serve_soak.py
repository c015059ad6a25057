"""The soak: kmnist-serve for 10 minutes of mixed traffic while it is operated, on 127.0.0.1 only.

`python -m benchmarks.serve --parts=soak` (--soak_seconds to shorten it). Clients, each a thread
sending back to back: TF Serving REST :predict (3), TF Serving gRPC Predict, Open Inference REST,
the drawing page (/demo/prepare then :explain), hostile bodies (malformed JSON, wrong shapes, an
oversized body, a body cut off mid-way), and a readiness probe every 0.2 s. Meanwhile, at fixed
shares of the run: two kmnist-train runs export new versions into the served base and two copies
roll in as versions, the model config file gains a model and loses it again, and the server is
stopped with SIGTERM and started again on the same ports.

A good request retries what the server refuses on purpose (503 or 429 with Retry-After, gRPC
UNAVAILABLE or RESOURCE_EXHAUSTED, a refused connection while it restarts); it fails if it ends in
anything else (a reset, a cut answer, a 5xx without Retry-After, a wrong answer). Reported: good
requests failed (must be 0), p50/p99 of good requests, the probe's p99 and worst, the server's RSS
at start and end, its log lines and request-log lines per 1,000 requests.
"""

import io
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import numpy as np
from PIL import Image

from benchmarks.serve_load import ServerProcess, write_version

CONFIG = """model_config_list {{
  config {{ name: "kmnist" base_path: "{base}" model_platform: "tensorflow"
    logging_config {{ log_collector_config {{ filename_prefix: "{logs}" }}
                     sampling_config {{ sampling_rate: 0.01 }} }} }}
{extra}}}
"""
REFUSED_HTTP = (429, 503)
# Versions differ (each training run its own model): an answer is checked to be a digit per image.
DIGIT_CLASSES = set(range(10))


class Tally:
  def __init__(self):
    self.lock = threading.Lock()
    self.latencies = {}  # api -> [ms] of good requests
    self.failed = []  # (api, what)
    self.retries = 0
    self.hostile = {"answered_4xx": 0, "other": []}

  def good(self, api, ms):
    with self.lock:
      self.latencies.setdefault(api, []).append(ms)


def post(url, body: bytes, content_type="application/json", timeout=30):
  request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
  with urllib.request.urlopen(request, timeout=timeout) as reply:
    return json.loads(reply.read())


def retrying(tally: Tally, api: str, send, check, stop: threading.Event) -> None:
  """One good request: sent until answered, retrying only the server's deliberate refusals."""
  start, deadline = time.perf_counter(), time.monotonic() + 120
  while time.monotonic() < deadline:
    try:
      answer = send()
    except urllib.error.HTTPError as e:
      if e.code in REFUSED_HTTP and e.headers.get("Retry-After"):
        tally.retries += 1
        time.sleep(0.2)
        continue
      tally.failed.append((api, f"HTTP {e.code}: {e.read()[:200]!r}"))
      return
    except urllib.error.URLError as e:
      if isinstance(e.reason, ConnectionRefusedError):  # restarting: nothing was accepted
        tally.retries += 1
        time.sleep(0.2)
        continue
      tally.failed.append((api, repr(e.reason)))
      return
    except grpc.RpcError as e:
      if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
        tally.retries += 1
        time.sleep(0.2)
        continue
      tally.failed.append((api, f"{e.code().name}: {e.details()}"))
      return
    except OSError as e:  # a reset, a cut answer
      tally.failed.append((api, repr(e)))
      return
    if not check(answer):
      tally.failed.append((api, f"wrong answer {str(answer)[:200]}"))
      return
    tally.good(api, (time.perf_counter() - start) * 1000)
    return
  tally.failed.append((api, "still refused after 120 s"))


def clients(server: ServerProcess, digits, tally: Tally, stop: threading.Event):
  """The client threads (not started)."""
  import tensorflow as tf
  from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

  url = server.url
  picture = Image.fromarray(255 - digits[0]).resize((200, 200))
  png = io.BytesIO()
  picture.save(png, format="PNG")

  def loop(body):
    def run():
      i = 0
      while not stop.is_set():
        body(i % len(digits))
        i += 1

    return threading.Thread(target=run, daemon=True)

  def rest(i):
    body = json.dumps({"instances": digits[i : i + 1].tolist()}).encode()
    retrying(
      tally,
      "tf_serving_rest",
      lambda: post(f"{url}/v1/models/kmnist:predict", body),
      lambda a: [p["class_id"] in DIGIT_CLASSES for p in a["predictions"]] == [True],
      stop,
    )

  channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
  stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

  def grpc_predict(i):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "kmnist"
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(digits[i : i + 4]))
    retrying(
      tally,
      "tf_serving_grpc",
      lambda: stub.Predict(request, timeout=30),
      lambda a: set(tf.make_ndarray(a.outputs["class_id"]).tolist()) <= DIGIT_CLASSES,
      stop,
    )

  def open_inference(i):
    one = {"name": "image", "shape": [1, 28, 28], "datatype": "UINT8"}
    body = json.dumps({"inputs": [{**one, "data": digits[i].ravel().tolist()}]}).encode()
    retrying(
      tally,
      "open_inference_rest",
      lambda: post(f"{url}/v2/models/kmnist/infer", body),
      lambda a: [o["data"] for o in a["outputs"] if o["name"] == "class_id"][0][0] in DIGIT_CLASSES,
      stop,
    )

  def page(i):
    def send():
      pixels = post(f"{url}/demo/prepare", png.getvalue(), "image/png")["pixels"]
      body = json.dumps({"instances": [pixels]}).encode()
      return post(f"{url}/v1/models/kmnist:explain", body)

    retrying(tally, "page", send, lambda a: len(a["explanations"]) == 1, stop)

  hostile_bodies = [
    ("/v1/models/kmnist:predict", b'{"instances": ['),
    ("/v1/models/kmnist:predict", b'{"instances": [[1, 2, 3]]}'),
    ("/v2/models/kmnist/infer", b'{"inputs": [{"name": "image"}]}'),
    ("/v1/models/kmnist:predict", b"[" + b" " * (17 * 2**20) + b"]"),
    ("/demo/prepare", b"\x89PNG not really"),
  ]

  def hostile(i):
    path, body = hostile_bodies[i % len(hostile_bodies)]
    try:
      post(f"{url}{path}", body)
      tally.hostile["other"].append(f"{path}: 200")
    except urllib.error.HTTPError as e:
      if 400 <= e.code < 500 and e.code != 429:
        tally.hostile["answered_4xx"] += 1
      elif e.code not in REFUSED_HTTP:
        tally.hostile["other"].append(f"{path}: {e.code}")
    except OSError:
      pass  # while it restarts, or the server closing an oversized upload: nothing to count
    if i % 5 == 0:  # a body cut off mid-way
      try:
        with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as s:
          s.sendall(
            b"POST /v1/models/kmnist:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 9999\r\n\r\n["
          )
      except OSError:
        pass
    time.sleep(0.05)

  threads = [loop(rest) for _ in range(3)]
  threads += [loop(grpc_predict), loop(open_inference), loop(page), loop(hostile)]
  return threads


def probe(server: ServerProcess, latencies: list, stop: threading.Event):
  def run():
    while not stop.wait(0.2):
      start = time.perf_counter()
      try:
        urllib.request.urlopen(f"{server.url}/v2/health/live", timeout=10).read()
        latencies.append((time.perf_counter() - start) * 1000)
      except OSError:
        pass  # restarting

  return threading.Thread(target=run, daemon=True)


def train_into(export_dir: Path, data_dir: str, log: Path) -> subprocess.Popen:
  """A real kmnist-train run exporting its version into the served export directory."""
  command = [
    sys.executable, "-m", "kmnist.cli.train", f"--data_dir={data_dir}", "--steps=200",
    f"--model_dir={export_dir.parent / f'run-{time.time_ns()}'}", f"--export_dir={export_dir}",
    "--tflite=int8_classifier", "--novisualize",
  ]  # fmt: skip
  return subprocess.Popen(command, stdout=open(log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115


def run(digits, workdir, seconds: float, data_dir: str, reference: Path) -> dict:
  """The soak; returns its figures."""
  workdir = Path(workdir)
  export_dir = workdir / "exported"
  shutil.copytree(reference / "saved_model", export_dir / "saved_model")
  shutil.copytree(reference / "tflite", export_dir / "tflite")
  config = workdir / "models.config"
  base, logs = export_dir / "saved_model", workdir / "requests"
  config.write_text(CONFIG.format(base=base, logs=logs, extra=""))
  flags = [
    f"--model_config_file={config}", "--model_config_file_poll_wait_seconds=1",
    "--poll_seconds=0.5", "--drain_seconds=5",
  ]  # fmt: skip
  tally, probes, stop = Tally(), [], threading.Event()
  server = ServerProcess(None, *flags, log_path=workdir / "server.log")
  server.start()
  rss = {"start_mib": server.rss_bytes() / 2**20}
  threads = [*clients(server, digits, tally, stop), probe(server, probes, stop)]
  for thread in threads:
    thread.start()
  events, trainings, began = [], [], time.monotonic()

  def at(share, what, action):
    wait = began + share * seconds - time.monotonic()
    time.sleep(max(0.0, wait))
    action()
    events.append((round(time.monotonic() - began, 1), what))

  extra = f'  config {{ name: "kmnist_b" base_path: "{base}" model_platform: "tensorflow" }}\n'
  at(
    0.10,
    "kmnist-train exports a version",
    lambda: trainings.append(train_into(export_dir, data_dir, workdir / "train.log")),
  )
  at(
    0.25,
    "a copy rolls in as a version",
    lambda: write_version(base, reference / "saved_model" / "1"),
  )
  at(
    0.35,
    "config file gains kmnist_b",
    lambda: config.write_text(CONFIG.format(base=base, logs=logs, extra=extra)),
  )
  at(
    0.45,
    "kmnist-train exports a version",
    lambda: trainings.append(train_into(export_dir, data_dir, workdir / "train.log")),
  )

  def restart():
    rss["before_restart_mib"] = server.rss_bytes() / 2**20
    rss["exit_code"] = server.stop()
    server.start()

  at(0.60, "SIGTERM, then started again on the same ports", restart)
  at(
    0.75,
    "a copy rolls in as a version",
    lambda: write_version(base, reference / "saved_model" / "1"),
  )
  at(
    0.85,
    "config file loses kmnist_b",
    lambda: config.write_text(CONFIG.format(base=base, logs=logs, extra="")),
  )
  at(1.0, "end", lambda: None)
  rss["end_mib"] = server.rss_bytes() / 2**20
  stop.set()
  for thread in threads:
    thread.join(timeout=150)
  trained = [t.wait(timeout=600) for t in trainings]
  served = server.served_version()
  server.stop()
  good = [ms for values in tally.latencies.values() for ms in values]
  requests = len(good) + len(tally.failed) + tally.hostile["answered_4xx"]
  log_lines = len(server.log().splitlines())
  request_lines = (
    len(Path(f"{logs}.jsonl").read_text().splitlines()) if Path(f"{logs}.jsonl").exists() else 0
  )
  return {
    "seconds": seconds,
    "good_requests": len(good),
    "good_requests_failed": len(tally.failed),
    "failures": tally.failed[:10],
    "retries_of_refusals": tally.retries,
    "hostile_answered_4xx": tally.hostile["answered_4xx"],
    "hostile_other": tally.hostile["other"][:10],
    "p50_ms": float(np.percentile(good, 50)),
    "p99_ms": float(np.percentile(good, 99)),
    "by_api": {
      api: {
        "requests": len(v),
        "p50_ms": float(np.percentile(v, 50)),
        "p99_ms": float(np.percentile(v, 99)),
      }
      for api, v in sorted(tally.latencies.items())
    },
    "probe_p99_ms": float(np.percentile(probes, 99)),
    "probe_max_ms": float(max(probes)),
    "probes_over_100ms": int(sum(ms > 100 for ms in probes)),
    "probes": len(probes),
    "rss": rss,
    "server_log_lines_per_1000_requests": 1000 * log_lines / max(requests, 1),
    "request_log_lines_per_1000_requests": 1000 * request_lines / max(requests, 1),
    "trainings_exit_codes": trained,
    "last_version_served": served,
    "events": events,
  }


def table(figures: dict) -> str:
  """The soak's table, from the benchmark's JSON (or its "soak" part)."""
  f = figures.get("soak", figures)
  rows = [
    f"Soak: {f['seconds'] / 60:.0f} minutes; events: "
    + "; ".join(f"{t:.0f} s {what}" for t, what in f["events"]),
    "",
    "| good requests | failed | p50 ms | p99 ms | probe p99 / worst ms | RSS start → end MiB "
    "| server log lines / 1,000 requests | request log lines / 1,000 |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    f"| {f['good_requests']:,} | {f['good_requests_failed']} | {f['p50_ms']:.1f} | "
    f"{f['p99_ms']:.1f} | {f['probe_p99_ms']:.1f} / {f['probe_max_ms']:.1f} | "
    f"{f['rss']['start_mib']:.0f} → {f['rss']['end_mib']:.0f} | "
    f"{f['server_log_lines_per_1000_requests']:.1f} | "
    f"{f['request_log_lines_per_1000_requests']:.1f} |",
    "",
    "| API | good requests | p50 ms | p99 ms |",
    "| --- | ---: | ---: | ---: |",
  ]
  for api, a in f["by_api"].items():
    rows.append(f"| {api} | {a['requests']:,} | {a['p50_ms']:.1f} | {a['p99_ms']:.1f} |")
  return "\n".join(rows)


PROBER = """
import json, sys, time, urllib.request
url, seconds, latencies = sys.argv[1], float(sys.argv[2]), []
end = time.monotonic() + seconds
while time.monotonic() < end:
  for kind in ("live", "ready"):
    start = time.perf_counter()
    urllib.request.urlopen(url + "/v2/health/" + kind, timeout=10).read()
    latencies.append((time.perf_counter() - start) * 1000)
  time.sleep(0.05)
print(json.dumps(latencies))
"""


def flood(digits, workdir, reference: Path, seconds: float = 20, clients_n: int = 32) -> dict:
  """The probes while the page's endpoint is flooded: `clients_n` clients post drawings to
  /demo/prepare back to back, and /v2/health/live and /ready are asked every 50 ms."""
  picture = Image.fromarray(255 - digits[0]).resize((280, 280))
  png = io.BytesIO()
  picture.save(png, format="PNG")
  base = Path(workdir) / "flood" / "saved_model"
  shutil.copytree(reference / "saved_model", base)
  answered, refused, stop = [0], [0], threading.Event()
  with ServerProcess(base, log_path=Path(workdir) / "flood.log") as server:

    def flooding():
      while not stop.is_set():
        try:
          post(f"{server.url}/demo/prepare", png.getvalue(), "image/png")
          answered[0] += 1
        except urllib.error.HTTPError:
          refused[0] += 1  # 429 beyond --max_requests_in_flight

    threads = [threading.Thread(target=flooding) for _ in range(clients_n)]
    for thread in threads:
      thread.start()
    # The prober is a process of its own: the flooding threads' GIL must not delay its clock.
    prober = subprocess.run(
      [sys.executable, "-c", PROBER, server.url, str(seconds)],
      capture_output=True, text=True, timeout=seconds + 60,
    )  # fmt: skip
    stop.set()
    for thread in threads:
      thread.join()
  every = json.loads(prober.stdout)
  return {
    "clients": clients_n,
    "seconds": seconds,
    "drawings_per_s": answered[0] / seconds,
    "refused_429": refused[0],
    "probes": len(every),
    "probe_p50_ms": float(np.percentile(every, 50)),
    "probe_p99_ms": float(np.percentile(every, 99)),
    "probe_max_ms": float(max(every)),
    "probes_over_100ms": int(sum(ms > 100 for ms in every)),
  }


def flood_table(f: dict) -> str:
  return (
    f"\nProbes while {f['clients']} clients flood /demo/prepare ({f['drawings_per_s']:.0f} "
    f"drawings/s, {f['refused_429']} refused with 429): {f['probes']} probes, p50 "
    f"{f['probe_p50_ms']:.1f} ms, p99 {f['probe_p99_ms']:.1f} ms, worst {f['probe_max_ms']:.1f} "
    f"ms, {f['probes_over_100ms']} over 100 ms."
  )
