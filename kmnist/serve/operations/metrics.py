"""kmnist-serve's Prometheus metrics at /metrics, beside kserve's own (request_*_seconds).

Each metric is declared once here, with its help and labels; docs/reference's metrics page is
generated from METRICS. Labels:
  model    the model's name (--model_name, or the config file's name)
  version  the version that answered ("" when none did: refused or not found before one was chosen)
  api      tf_serving_rest, tf_serving_grpc, open_inference_rest, open_inference_grpc, or page
           (the drawing page's /demo/prepare)
  status   the HTTP status for REST ("200", "400", "429", ...), the gRPC code for gRPC ("OK",
           "INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", ...)
No TensorFlow here.
"""

import contextvars
import dataclasses
import time

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
  "kmnist_requests",
  "Requests answered, by model, version, API and status (refusals included).",
  ["model", "version", "api", "status"],
)
LATENCY = Histogram(
  "kmnist_request_seconds",
  "Seconds from a request's arrival to its answer, by model, version, API and status.",
  ["model", "version", "api", "status"],
  buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EXAMPLES = Counter(
  "kmnist_examples", "Examples (digits) in the requests that reached a model.", ["model", "version"]
)
IN_FLIGHT = Gauge("kmnist_requests_in_flight", "Requests being worked on now (probes not counted).")
BATCH_SIZE = Histogram(
  "kmnist_batch_size",
  "Examples per batch the batcher ran (--enable_batching), before padding.",
  ["model"],
  buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
QUEUE_DEPTH = Gauge(
  "kmnist_batch_queue_examples",
  "Examples waiting in the batcher's queues of a model (--enable_batching).",
  ["model"],
)
METRICS = (REQUESTS, LATENCY, EXAMPLES, IN_FLIGHT, BATCH_SIZE, QUEUE_DEPTH)


@dataclasses.dataclass
class Call:
  """One request as the operator sees it, filled in as it goes (the model, the version)."""

  api: str
  model: str
  start: float = dataclasses.field(default_factory=time.perf_counter)
  version: str = ""
  examples: int = 0
  digest: str = ""  # sha256 of the input array's bytes (kmnist.serve.model)
  pixels: object = None  # the input array, kept only if request logs ask for inputs
  seconds: float = 0.0


CURRENT: contextvars.ContextVar[Call | None] = contextvars.ContextVar("kmnist_call", default=None)


def finish(call: Call, status: str) -> None:
  call.seconds = time.perf_counter() - call.start
  REQUESTS.labels(call.model, call.version, call.api, status).inc()
  LATENCY.labels(call.model, call.version, call.api, status).observe(call.seconds)
  if call.examples:
    EXAMPLES.labels(call.model, call.version).inc(call.examples)


def reference() -> list[dict]:
  """Each metric as Prometheus exposes it: name, type, labels, help (for the docs)."""
  rows = []
  for metric in METRICS:
    kind = metric._type
    name = metric._name + ("_total" if kind == "counter" else "")
    rows.append(
      {
        "name": name,
        "type": kind,
        "labels": list(metric._labelnames),
        "help": metric._documentation,
      }
    )
  return rows


def markdown() -> str:
  """docs/reference/serve-metrics.md: the metrics and the request log's fields, from the code."""
  from kmnist.serve.operations import request_log  # noqa: PLC0415 (only the docs need it)

  rows = [
    "# kmnist-serve's metrics and request logs",
    "",
    "Generated from `kmnist/serve/operations/metrics.py` and `request_log.py` (`python -m "
    "docs.generate`). `/metrics` also carries kserve's own "
    "`request_preprocess_seconds`, `request_predict_seconds`, `request_postprocess_seconds` and "
    "`request_explain_seconds` (label `model_name`), and prometheus_client's process metrics.",
    "",
    "| metric | type | labels | what it counts |",
    "| --- | --- | --- | --- |",
  ]
  for row in reference():
    labels = ", ".join(f"`{label}`" for label in row["labels"]) or "none"
    rows.append(f"| `{row['name']}` | {row['type']} | {labels} | {row['help']} |")
  rows += ["", "Labels:", "", "```", __doc__.split("Labels:\n", 1)[1].split("No TensorFlow")[0]]
  rows[-1] = rows[-1].rstrip() + "\n```"
  rows += [
    "",
    "## Request logs",
    "",
    "One JSON object per line, these fields in this order: "
    + ", ".join(f"`{field}`" for field in request_log.FIELDS)
    + ", and `inputs` (the pixels) only with `--request_log_inputs`.",
    "",
    request_log.__doc__.replace("No TensorFlow here.", "").strip(),
    "",
  ]
  return "\n".join(rows)
