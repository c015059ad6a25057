"""kmnist-serve's REST app: kserve's V1 and V2 endpoints behind kmnist's own routes, with request
limits and one-line errors.

What kserve 0.21 does not do, and how it is added here without patching kserve:
  * its REST app is one module-level FastAPI object: create_app builds a fresh one holding kserve's
    own V1/V2 endpoints and handlers after kmnist's routes, which therefore win (GET / is the page,
    GET /v1/models/<name> answers TF Serving's model status instead of kserve's {"name", "ready"};
    TF Serving's routes by version and label are tf_serving_routes.py's);
  * it has no CORS: cors.py answers other origins' pages, for --cors_allowed_origins;
  * it has no request size limit: BodyLimit answers 413 before reading an oversized body;
  * its error handlers log a traceback for every bad request: a 4xx is one log line here, and so
    is a client that hangs up mid-body (two tracebacks, kserve's and uvicorn's, otherwise); a
    full batch queue is 503, as TF Serving's UNAVAILABLE.
"""

import asyncio
import logging
import warnings

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import FastAPIDeprecationWarning, RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRouter
from kserve import errors as kserve_errors
from kserve.protocol.rest.server import metrics_handler
from kserve.protocol.rest.v1_endpoints import register_v1_endpoints
from kserve.protocol.rest.v2_endpoints import register_v2_endpoints
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from kmnist.serve.operations import gate, health
from kmnist.serve.protocols import tf_serving_routes
from kmnist.serve.repository.batching import QueueFullError
from kmnist.serve.repository.versions import UnknownLabelError, VersionNotFoundError
from kmnist.serve.web import cors, on_device, page

logger = logging.getLogger("kmnist.serve")

DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024
# kserve 0.21's V1 endpoints answer with FastAPI's ORJSONResponse, deprecated by FastAPI 0.165;
# not ours to act on.
warnings.filterwarnings(
  "ignore", message="ORJSONResponse is deprecated", category=FastAPIDeprecationWarning
)


class ORJSON(JSONResponse):
  """JSON through orjson (numpy arrays too), as kserve answers; not FastAPI's deprecated class."""

  def render(self, content) -> bytes:
    return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


class BodyTooLargeError(Exception):
  pass


class BodyLimit:
  """ASGI middleware: a body over `max_bytes` gets 413 {"error"}, refused by its Content-Length
  before it is read, or stopped while a chunked body streams in. A client that hangs up before
  sending its whole body is one log line: Starlette raises ClientDisconnect from
  `request.body()`, which nothing in kserve or FastAPI expects."""

  def __init__(self, app, max_bytes: int):
    self.app = app
    self.max_bytes = max_bytes

  async def __call__(self, scope, receive, send):
    if scope["type"] != "http":
      return await self.app(scope, receive, send)
    length = dict(scope["headers"]).get(b"content-length", b"")
    if length.isdigit() and int(length) > self.max_bytes:
      message = self.message(int(length))
      logger.warning("413 %s %s: %s", scope["method"], scope["path"], message)
      return await ORJSON(status_code=413, content={"error": message})(scope, receive, send)
    seen, complete, hung_up = 0, False, False

    async def counting_receive():
      nonlocal seen, complete, hung_up
      message = await receive()
      seen += len(message.get("body", b""))
      if seen > self.max_bytes:
        raise BodyTooLargeError(self.message(seen, at_least=True))
      complete = complete or (message["type"] == "http.request" and not message.get("more_body"))
      hung_up = hung_up or (message["type"] == "http.disconnect" and not complete)
      return message

    try:
      await self.app(scope, counting_receive, send)
    except ClientDisconnect:
      if not hung_up:
        raise
    if hung_up:  # nobody is left to answer: an ordinary event, not the server's fault
      of = f"{int(length):,}" if length.isdigit() else "a chunked body"
      where = f"{scope['method']} {scope['path']}, {seen:,} bytes of {of}"
      logger.info("client hung up before sending the whole body (%s)", where)

  def message(self, size: int, at_least: bool = False) -> str:
    return (
      f"request body of {'more than ' if at_least else ''}{size:,} bytes is over this "
      f"server's limit of {self.max_bytes:,} (kmnist-serve --max_request_bytes); send fewer "
      f"images per request"
    )


def _error(status: int, headers=None):
  async def handler(request: Request, exc: Exception):
    message = _reworded(str(exc), request)
    logger.warning("%d %s %s: %s", status, request.method, request.url.path, message)
    return ORJSON(status_code=status, content={"error": message}, headers=headers)

  return handler


def _reworded(message: str, request: Request) -> str:
  """kserve's own wording of two common mistakes, made to name the fix."""
  if message.startswith("Unrecognized request format: "):  # its JSON parse of a JSON body
    return (
      f"request body is not valid JSON ({message.split(': ', 1)[1]}); send a JSON object "
      f'such as {{"instances": [...]}}'
    )
  if message.startswith("received byte inputs, but the"):  # a V2 body sent without a JSON type
    content_type = request.headers.get("content-type", "none")
    return (
      f"an Open Inference request must be sent with Content-Type: application/json (this "
      f"one: {content_type}), or as binary data with the inference-header-content-length header"
    )
  return message


async def _http_error(request: Request, exc: HTTPException):
  message = f"{request.method} {request.url.path}: {exc.detail}"
  return ORJSON(status_code=exc.status_code, content={"error": message}, headers=exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError):
  """FastAPI's own check of Open Inference bodies: 400 with one line, like other bad requests."""
  errors = [e for e in exc.errors() if e.get("loc", ())[-1:] != ("bytes",)] or exc.errors()
  # "body.InferenceRequest.inputs.0.data" -> "inputs.0.data": where in the request it is wrong.
  where = [
    ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "InferenceRequest"))
    for e in errors[:3]
  ]
  problems = "; ".join(
    f"{w or 'body'}: {e.get('msg', '')}" for w, e in zip(where, errors, strict=False)
  )
  return await _error(400)(request, Exception(f"not a valid Open Inference request ({problems})"))


def create_app(
  dataplane,
  repository_extension,
  max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
  cors_allowed_origins: tuple[str, ...] = (),
  operations: gate.Operations | None = None,
) -> FastAPI:
  """The REST app: kmnist's routes first, then kserve's V1 and V2 endpoints and /metrics; CORS
  for the origins given (none: no CORS headers, browsers keep other origins out); the gate
  (operations: API key, admission, metrics, request logs)."""
  app = FastAPI(title="kmnist-serve", docs_url=None, redoc_url=None, default_response_class=ORJSON)
  operations = operations or gate.Operations(health.Health(dataplane.model_registry))

  router = APIRouter()

  @router.get("/", include_in_schema=False)
  async def index():
    return page.index_response()

  @router.post("/demo/prepare")
  async def prepare(request: Request):
    """The page's drawing (a PNG body) -> {"pixels": 28x28}, the picture the model receives."""
    body = await request.body()
    return {"pixels": (await asyncio.to_thread(page.prepare_picture, body)).tolist()}

  app.include_router(router)
  app.include_router(on_device.router(dataplane))  # the page's "on this device" mode
  app.include_router(tf_serving_routes.router(dataplane, repository_extension))
  app.mount("/static", page.StaticFiles(directory=page.STATIC_DIR), name="static")
  metrics = APIRouter()
  metrics.add_api_route("/metrics", metrics_handler, methods=["GET"])
  app.include_router(metrics)
  register_v1_endpoints(app, dataplane, repository_extension)
  register_v2_endpoints(app, dataplane, repository_extension)

  handlers = [
    (kserve_errors.InvalidInput, _error(400)),
    (RequestValidationError, _validation_error),
    (BodyTooLargeError, _error(413)),
    (kserve_errors.ModelNotFound, _error(404)),
    (VersionNotFoundError, _error(404)),
    (UnknownLabelError, _error(400)),
    (QueueFullError, _error(503, {"Retry-After": str(health.RETRY_AFTER_SECONDS)})),
    (HTTPException, _http_error),
    (kserve_errors.ModelNotReady, kserve_errors.model_not_ready_handler),
    (kserve_errors.InferenceError, kserve_errors.inference_error_handler),
    (NotImplementedError, kserve_errors.not_implemented_error_handler),
    (kserve_errors.UnsupportedProtocol, kserve_errors.unsupported_protocol_error_handler),
    (kserve_errors.ServerNotLive, kserve_errors.server_not_live_handler),
    (kserve_errors.ServerNotReady, kserve_errors.server_not_ready_handler),
    (Exception, kserve_errors.generic_exception_handler),
  ]
  for exception, handler in handlers:
    app.add_exception_handler(exception, handler)
  app.add_middleware(BodyLimit, max_bytes=max_request_bytes)
  # The probes answered first (/v2/health/live and /ready), then the API key, admission and each
  # request's metrics and log.
  app.add_middleware(gate.RestGate, operations=operations)
  if cors_allowed_origins:  # outermost: a preflight is answered before any limit or route
    app.add_middleware(cors.Cors, allow_origins=cors_allowed_origins)
  return app
