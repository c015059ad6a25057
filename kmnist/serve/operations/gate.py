"""The gate every request passes, REST and gRPC alike: the API key, admission (drain, the bound on
requests in flight), and the request's metrics and log line.

RestGate is the REST app's outermost middleware but CORS; kmnist.serve.server's gRPC interceptor
calls the same pieces. Only requests to a model (and the page's /demo/prepare) are admitted and
counted: probes, status, metadata, /metrics and static files pass straight through.
"""

import dataclasses
import logging
import re
import time

from starlette.responses import JSONResponse

from kmnist.serve.operations import api_key, health, metrics, request_log, telemetry

logger = logging.getLogger("kmnist.serve")

REST_CALLS = [
  (re.compile(r"/v1/models/([^/:]+)(?:/(?:versions|labels)/[^/:]+)?:\w+$"), "tf_serving_rest"),
  (re.compile(r"/v2/models/([^/]+)(?:/versions/[^/]+)?/infer$"), "open_inference_rest"),
  (re.compile(r"/demo/prepare()$"), "page"),
]
GRPC_CALLS = {"Predict": "tf_serving_grpc", "ModelInfer": "open_inference_grpc"}
PROBES = ("/v2/health/live", "/v2/health/ready")  # liveness, readiness (health.py)
QUIET_SECONDS = 10  # refusals come in floods: one log line per kind this often (metrics count all)
_last_logged: dict = {}


def log_refusal(kind: str, message: str, *args) -> None:
  """Logs a refusal (401, 429, 503), at most one line of each kind every QUIET_SECONDS."""
  now = time.monotonic()
  if now - _last_logged.get(kind, -QUIET_SECONDS) >= QUIET_SECONDS:
    _last_logged[kind] = now
    logger.warning(message + " (each such refusal is counted in kmnist_requests_total)", *args)


@dataclasses.dataclass
class Operations:
  """What the gate needs: the health (readiness, drain, admission), the API keys (None: open),
  the request log, and each model's logging_config (name -> request_log.Logging or None)."""

  health: health.Health
  keys: api_key.Keys | None = None
  log: request_log.RequestLog = dataclasses.field(default_factory=request_log.RequestLog)
  logging_of: object = lambda model: None

  def finish(self, call: metrics.Call, status: str) -> None:
    metrics.finish(call, status)
    self.log.write(self.logging_of(call.model), call, status)


def rest_call(method: str, path: str) -> metrics.Call | None:
  if method != "POST":
    return None
  for pattern, api in REST_CALLS:
    match = pattern.match(path)
    if match:
      return metrics.Call(api, match.group(1))
  return None


def grpc_call(method_name: str, request) -> metrics.Call | None:
  api = GRPC_CALLS.get(method_name.rsplit("/", 1)[-1])
  if api is None:
    return None
  spec = getattr(request, "model_spec", None)
  return metrics.Call(api, spec.name if spec is not None else getattr(request, "model_name", ""))


class RestGate:
  """ASGI middleware: 401 without the key, 503/429 with Retry-After when refused, and each call
  counted and (sampled) logged with the status it got."""

  def __init__(self, app, operations: Operations):
    self.app, self.ops = app, operations

  async def __call__(self, scope, receive, send):
    if scope["type"] != "http":
      return await self.app(scope, receive, send)
    method, path = scope["method"], scope["path"]
    if path in PROBES:  # answered here, first: no routing, no key, never refused
      ready, why = (True, "") if path == PROBES[0] else self.ops.health.ready()
      key = "live" if path == PROBES[0] else "ready"
      body = {key: ready, **({"error": why} if why else {})}
      return await JSONResponse(body, 200 if ready else 503)(scope, receive, send)
    call = rest_call(method, path)
    keys = self.ops.keys
    authorization = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
    guarded = keys is not None and method != "OPTIONS" and not api_key.is_open(path)
    if guarded and not keys.allows(authorization):
      log_refusal("401", "401 %s %s: no valid API key", method, path)
      if call is not None:
        self.ops.finish(call, "401")
      headers = {"WWW-Authenticate": "Bearer"}
      response = JSONResponse({"error": api_key.MISSING}, status_code=401, headers=headers)
      return await response(scope, receive, send)
    if call is None:
      return await self.app(scope, receive, send)
    status = "500"
    draining = self.ops.health.draining

    async def sending(message):
      nonlocal status
      if message["type"] == "http.response.start":
        status = str(message["status"])
        telemetry.annotate(call)  # while the request's span is open
        if draining or self.ops.health.draining:  # clients open a new connection, elsewhere
          message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
      await send(message)

    token = metrics.CURRENT.set(call)
    try:
      with self.ops.health.admitted():
        metrics.IN_FLIGHT.inc()
        try:
          await self.app(scope, receive, sending)
        finally:
          metrics.IN_FLIGHT.dec()
    except health.RefusedError as refused:
      status = str(refused.http_status)
      log_refusal(status, "%s %s %s: %s", status, method, path, refused)
      headers = {"Retry-After": str(health.RETRY_AFTER_SECONDS)}
      if refused.http_status == 503:
        headers["Connection"] = "close"
      response = JSONResponse({"error": str(refused)}, refused.http_status, headers=headers)
      await response(scope, receive, send)
    finally:
      metrics.CURRENT.reset(token)
      self.ops.finish(call, status)
