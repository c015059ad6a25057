"""kserve's ModelServer assembled for kmnist: bound to --host, with TF Serving's status routes and
gRPC API, the drawing page, request limits, and one-line errors.

What kserve 0.21 does not do, and how it is added here without patching kserve:
  * it binds REST to 0.0.0.0 and gRPC to [::]: KmnistModelServer.start builds the same two servers
    with the host set (uvicorn's Config.host, the gRPC listen address);
  * its REST app is one module-level FastAPI object: create_app builds a fresh one holding kserve's
    own V1/V2 endpoints and handlers after kmnist's routes, which therefore win (GET / is the page,
    GET /v1/models/<name> answers TF Serving's model status instead of kserve's {"name", "ready"});
  * it has no request size limit: BodyLimit answers 413 before reading an oversized body;
  * its error handlers log a traceback for every bad request: a 4xx is one log line here;
  * its V2 repository API could unload the model: versions follow the base path, so unload is
    refused and load means "poll now".
"""

import asyncio
import logging
import warnings
from concurrent import futures

import grpc
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import FastAPIDeprecationWarning, RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.routing import APIRouter
from fastapi.staticfiles import StaticFiles
from grpc import aio
from kserve import ModelServer
from kserve import errors as kserve_errors
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from kserve.protocol.rest.server import RESTServer, metrics_handler
from kserve.protocol.rest.v1_endpoints import V1Endpoints, register_v1_endpoints
from kserve.protocol.rest.v2_endpoints import register_v2_endpoints
from starlette.exceptions import HTTPException

from kmnist.serve import model as serve_model
from kmnist.serve import page, tf_serving_grpc, tf_serving_rest
from kmnist.serve.servable import BadRequest

logger = logging.getLogger("kmnist.serve")

DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024
# kserve 0.21's V1 endpoints answer with FastAPI's ORJSONResponse, deprecated by FastAPI 0.165;
# not ours to act on.
warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated",
                        category=FastAPIDeprecationWarning)


class ORJSON(JSONResponse):
  """JSON through orjson (numpy arrays too), as kserve answers; not FastAPI's deprecated class."""

  def render(self, content) -> bytes:
    return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


class BodyTooLarge(Exception):
  pass


class BodyLimit:
  """ASGI middleware: a body over `max_bytes` gets 413 {"error"}, refused by its Content-Length
  before it is read, or stopped while a chunked body streams in."""

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
    seen = 0

    async def counting_receive():
      nonlocal seen
      message = await receive()
      seen += len(message.get("body", b""))
      if seen > self.max_bytes:
        raise BodyTooLarge(self.message(seen, at_least=True))
      return message

    return await self.app(scope, counting_receive, send)

  def message(self, size: int, at_least: bool = False) -> str:
    return (f"request body of {'more than ' if at_least else ''}{size:,} bytes is over this "
            f"server's limit of {self.max_bytes:,} (kmnist-serve --max_request_bytes); send fewer "
            f"images per request")


def _error(status: int):
  async def handler(request: Request, exc: Exception):
    message = _reworded(str(exc), request)
    logger.warning("%d %s %s: %s", status, request.method, request.url.path, message)
    return ORJSON(status_code=status, content={"error": message})
  return handler


def _reworded(message: str, request: Request) -> str:
  """kserve's own wording of two common mistakes, made to name the fix."""
  if message.startswith("Unrecognized request format: "):  # its JSON parse of a JSON body
    return (f"request body is not valid JSON ({message.split(': ', 1)[1]}); send a JSON object "
            f'such as {{"instances": [...]}}')
  if message.startswith("received byte inputs, but the"):  # a V2 body sent without a JSON type
    content_type = request.headers.get("content-type", "none")
    return (f"an Open Inference request must be sent with Content-Type: application/json (this "
            f"one: {content_type}), or as binary data with the inference-header-content-length "
            f"header")
  return message


async def _http_error(request: Request, exc: HTTPException):
  message = f"{request.method} {request.url.path}: {exc.detail}"
  return ORJSON(status_code=exc.status_code, content={"error": message}, headers=exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError):
  """FastAPI's own check of Open Inference bodies: 400 with one line, like other bad requests."""
  errors = [e for e in exc.errors() if e.get("loc", ())[-1:] != ("bytes",)] or exc.errors()
  # "body.InferenceRequest.inputs.0.data" -> "inputs.0.data": where in the request it is wrong.
  where = [".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "InferenceRequest"))
           for e in errors[:3]]
  problems = "; ".join(f"{w or 'body'}: {e.get('msg', '')}" for w, e in zip(where, errors))
  return await _error(400)(request, Exception(f"not a valid Open Inference request ({problems})"))


def create_app(dataplane, repository_extension,
               max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> FastAPI:
  """The REST app: kmnist's routes first, then kserve's V1 and V2 endpoints and /metrics."""
  app = FastAPI(title="kmnist-serve", docs_url=None, redoc_url=None, default_response_class=ORJSON)

  def versions(model_name: str):
    return dataplane.get_model_from_registry(model_name).versions  # ModelNotFound -> 404

  def servable_at(model_name: str, version: int | None):
    servable = versions(model_name).current
    if version is not None and version != servable.version:
      raise tf_serving_grpc.VersionNotFound(
          f"Servable not found for request: Specific({model_name}, {version}); this server "
          f"serves version {servable.version}")
    return servable

  def metadata(model_name: str, version: int | None):
    servable = servable_at(model_name, version)
    signature_defs = tf_serving_grpc.signature_def_map(servable)
    return tf_serving_rest.model_metadata(model_name, servable, signature_defs)

  router = APIRouter()

  @router.get("/", include_in_schema=False)
  async def index():
    return FileResponse(page.STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

  @router.get("/v1/models/{model_name}")
  async def model_status(model_name: str):
    return tf_serving_rest.model_status(versions(model_name).status())

  @router.get("/v1/models/{model_name}/versions/{version}")
  async def version_status(model_name: str, version: int):
    statuses = versions(model_name).status(version)
    if not statuses:
      raise tf_serving_grpc.VersionNotFound(f"Could not find version {version} of model "
                                            f"{model_name}")
    return tf_serving_rest.model_status(statuses)

  @router.get("/v1/models/{model_name}/metadata")
  async def model_metadata(model_name: str):
    return metadata(model_name, None)

  @router.get("/v1/models/{model_name}/versions/{version}/metadata")
  async def version_metadata(model_name: str, version: int):
    return metadata(model_name, version)

  v1 = V1Endpoints(dataplane, repository_extension)

  @router.post("/v1/models/{model_name}/versions/{version:int}:predict")
  async def version_predict(model_name: str, version: int, request: Request):
    """TF Serving's version-pinned :predict, through kserve's own V1 handler. The version travels
    as a header to preprocess, which checks it against the version it takes for the request."""
    header = (serve_model.PINNED_VERSION_HEADER.encode(), str(version).encode())
    scope = dict(request.scope, headers=[*request.scope["headers"], header])
    return await v1.predict(model_name, Request(scope, request.receive))

  @router.post("/v1/models/{model_name}/labels/{label}:predict")
  async def label_predict(model_name: str, label: str):
    raise tf_serving_grpc.VersionNotFound(f"version label '{label}' of model {model_name} is not "
                                          f"known: kmnist-serve has no version labels")

  @router.post("/demo/prepare")
  async def prepare(request: Request):
    """The page's drawing (a PNG body) -> {"pixels": 28x28}, the picture the model receives."""
    return {"pixels": page.prepare_picture(await request.body()).tolist()}

  app.include_router(router)
  app.mount("/static", StaticFiles(directory=page.STATIC_DIR), name="static")
  metrics = APIRouter()
  metrics.add_api_route("/metrics", metrics_handler, methods=["GET"])
  app.include_router(metrics)
  register_v1_endpoints(app, dataplane, repository_extension)
  register_v2_endpoints(app, dataplane, repository_extension)

  handlers = [
      (kserve_errors.InvalidInput, _error(400)), (RequestValidationError, _validation_error),
      (BodyTooLarge, _error(413)), (kserve_errors.ModelNotFound, _error(404)),
      (tf_serving_grpc.VersionNotFound, _error(404)), (HTTPException, _http_error),
      (kserve_errors.ModelNotReady, kserve_errors.model_not_ready_handler),
      (kserve_errors.InferenceError, kserve_errors.inference_error_handler),
      (NotImplementedError, kserve_errors.not_implemented_error_handler),
      (kserve_errors.UnsupportedProtocol, kserve_errors.unsupported_protocol_error_handler),
      (kserve_errors.ServerNotLive, kserve_errors.server_not_live_handler),
      (kserve_errors.ServerNotReady, kserve_errors.server_not_ready_handler),
      (Exception, kserve_errors.generic_exception_handler)]
  for exception, handler in handlers:
    app.add_exception_handler(exception, handler)
  app.add_middleware(BodyLimit, max_bytes=max_request_bytes)
  return app


class FollowBaseRepository(ModelRepositoryExtension):
  """V2's repository API: `load` polls the base path now; `unload` is refused."""

  async def load(self, model_name: str) -> None:
    model = self._model_registry.get_model(model_name)
    if model is None:
      raise kserve_errors.ModelNotFound(model_name)
    await asyncio.get_running_loop().run_in_executor(None, model.versions.poll_once)

  async def unload(self, model_name: str) -> None:
    raise NotImplementedError(f"kmnist-serve does not unload {model_name} on request: it serves "
                              f"the newest version under its --model base; add or remove "
                              f"versions there")


class KmnistRESTServer(RESTServer):
  """kserve's REST server (uvicorn) on `host`, serving create_app's app."""

  def __init__(self, host: str, max_request_bytes: int, access_log: bool, **kwargs):
    super().__init__(FASTAPI_APP_IMPORT_STRING, **kwargs)
    self.config.host = host
    self.config.access_log = access_log
    self.max_request_bytes = max_request_bytes

  def create_application(self):
    self.config.app = create_app(self.dataplane, self.model_repository_extension,
                                 self.max_request_bytes)


class OneLineErrors(ExceptionToStatusInterceptor):
  """gRPC: a client's mistake is INVALID_ARGUMENT or NOT_FOUND with one log line."""

  CODES = {BadRequest: grpc.StatusCode.INVALID_ARGUMENT,
           kserve_errors.ModelNotFound: grpc.StatusCode.NOT_FOUND,
           tf_serving_grpc.VersionNotFound: grpc.StatusCode.NOT_FOUND}

  async def handle_exception(self, ex, request_or_iterator, context, method_name):
    for kind, code in self.CODES.items():
      if isinstance(ex, kind):
        logger.warning("%s %s: %s", code.name, method_name, ex)
        await context.abort(code, str(ex))
    await super().handle_exception(ex, request_or_iterator, context, method_name)


class KmnistGRPCServer(GRPCServer):
  """KServe's Open Inference gRPC service plus TF Serving's two services, on host:port."""

  def __init__(self, host: str, port: int, dataplane, repository_extension,
               max_message_bytes: int, grace_period: int):
    super().__init__(port, dataplane, repository_extension, kwargs={}, grace_period=grace_period)
    self._host = host
    self._max_message_bytes = max_message_bytes

  async def start(self, max_workers):
    self._server = aio.server(
        futures.ThreadPoolExecutor(max_workers=max_workers), interceptors=(OneLineErrors(),),
        options=[("grpc.max_send_message_length", self._max_message_bytes),
                 ("grpc.max_receive_message_length", self._max_message_bytes),
                 ("grpc.so_reuseport", 0)])  # never share the port silently with another server
    grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
        InferenceServicer(self._data_plane, self._model_repository_extension), self._server)
    tf_serving_grpc.add_to_server(self._server, self._data_plane)
    host = f"[{self._host}]" if ":" in self._host else self._host
    self._server.add_insecure_port(f"{host}:{self._port}")
    await self._server.start()
    await self._server.wait_for_termination()


class KmnistModelServer(ModelServer):
  """ModelServer: one REST process and gRPC (none if grpc_port is 0), both bound to `host`."""

  def __init__(self, host: str, http_port: int, grpc_port: int,
               max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES, access_log: bool = False,
               grace_period: int = 10):
    super().__init__(http_port=http_port, grpc_port=grpc_port, workers=1,
                     enable_grpc=bool(grpc_port), enable_docs_url=False,
                     enable_latency_logging=False, grace_period=grace_period)
    self.host = host
    self.max_request_bytes = max_request_bytes
    self.access_log = access_log
    self.model_repository_extension = FollowBaseRepository(model_registry=self.registered_models)

  def start(self, models) -> None:
    """As ModelServer.start with one worker, with the servers bound to `host`."""
    self._register_and_check_atleast_one_model_is_ready(models)
    self._rest_server = KmnistRESTServer(
        self.host, self.max_request_bytes, self.access_log, data_plane=self.dataplane,
        model_repository_extension=self.model_repository_extension, http_port=self.http_port,
        grace_period=self.grace_period, event_loop=self.event_loop,
        timeout_keep_alive=self.timeout_keep_alive)
    self.servers.append(self._rest_server.start())
    if self.enable_grpc:
      self._grpc_server = KmnistGRPCServer(
          self.host, self.grpc_port, self.dataplane, self.model_repository_extension,
          self.max_request_bytes, self.grace_period)
      self.servers.append(self._grpc_server.start(self.max_threads))
    self.setup_event_loop()
    self.register_signal_handler()
    asyncio.run(self._serve())
