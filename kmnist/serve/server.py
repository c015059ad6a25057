"""kserve's ModelServer assembled for kmnist: bound to --host, with kmnist's REST app (app.py), TF
Serving's gRPC API beside kserve's, and versions that follow the base path.

What kserve 0.21 does not do, and how it is added here without patching kserve:
  * it binds REST to 0.0.0.0 and gRPC to [::]: KmnistModelServer.start builds the same two servers
    with the host set (uvicorn's Config.host, the gRPC listen address), and with TLS on both when
    given a certificate (kserve's own serves it on REST only);
  * its gRPC errors log a traceback for every bad request: a bad request is one log line here
    (operations/grpc_gate.py, which also checks the API key and admits and counts each call);
  * on SIGTERM it stops at once, resetting what is in flight: here readiness turns false, new
    requests are refused with 503, those in flight finish (--drain_seconds), then it exits 0;
  * its V2 repository API could unload the model: versions follow the base path, so unload is
    refused and load means "poll now".
"""

import asyncio
import contextlib
import logging
import os
import signal
from concurrent import futures

import grpc
import uvicorn
from grpc import aio
from kserve import ModelServer
from kserve import errors as kserve_errors
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from kserve.protocol.rest.server import RESTServer

from kmnist.serve.operations import gate, grpc_gate, health, telemetry
from kmnist.serve.protocols import tf_serving_grpc
from kmnist.serve.web import address
from kmnist.serve.web.app import DEFAULT_MAX_REQUEST_BYTES, create_app

logger = logging.getLogger("kmnist.serve")


class FollowBaseRepository(ModelRepositoryExtension):
  """V2's repository API: `load` polls the base path now; `unload` is refused."""

  async def load(self, model_name: str) -> None:
    model = self._model_registry.get_model(model_name)
    if model is None:
      raise kserve_errors.ModelNotFound(model_name)
    await asyncio.get_running_loop().run_in_executor(None, model.versions.poll_once)

  async def unload(self, model_name: str) -> None:
    raise NotImplementedError(
      f"kmnist-serve does not unload {model_name} on request: it serves "
      f"the newest version under its --model base; add or remove versions there"
    )


class SignalsOurs(uvicorn.Server):
  """uvicorn's server, leaving SIGTERM and SIGINT to KmnistModelServer's drain."""

  @contextlib.contextmanager
  def capture_signals(self):
    yield


class KmnistRESTServer(RESTServer):
  """kserve's REST server (uvicorn) on `host`, serving create_app's app."""

  def __init__(
    self, host: str, max_request_bytes: int, access_log: bool, cors, operations, **kwargs
  ):
    super().__init__(FASTAPI_APP_IMPORT_STRING, **kwargs)
    self._server = SignalsOurs(self.config)  # SIGTERM drains first (KmnistModelServer.serve)
    self.operations = operations
    self.config.host = host
    self.config.access_log = access_log
    self.max_request_bytes = max_request_bytes
    self.cors = cors

  def create_application(self):
    app = create_app(
      self.dataplane,
      self.model_repository_extension,
      self.max_request_bytes,
      self.cors,
      self.operations,
    )
    self.config.app = telemetry.instrument_app(app)


class KmnistGRPCServer(GRPCServer):
  """KServe's Open Inference gRPC service plus TF Serving's two services, on host:port."""

  def __init__(
    self,
    host: str,
    port: int,
    dataplane,
    repository_extension,
    max_message_bytes: int,
    grace_period: int,
    tls_files: tuple[str, str] | None = None,
    operations=None,
  ):
    super().__init__(port, dataplane, repository_extension, kwargs={}, grace_period=grace_period)
    self._interceptors = (*telemetry.grpc_interceptors(), grpc_gate.GrpcGate(operations))
    self._host = host
    self._max_message_bytes = max_message_bytes
    self._tls_files = tls_files  # (certfile, keyfile): gRPC over TLS, as REST serves https

  async def start(self, max_workers):
    self._server = aio.server(
      futures.ThreadPoolExecutor(max_workers=max_workers),
      interceptors=self._interceptors,
      options=[
        ("grpc.max_send_message_length", self._max_message_bytes),
        ("grpc.max_receive_message_length", self._max_message_bytes),
        ("grpc.so_reuseport", 0),
      ],
    )  # never share the port silently with another server
    grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
      InferenceServicer(self._data_plane, self._model_repository_extension), self._server
    )
    tf_serving_grpc.add_to_server(self._server, self._data_plane)
    if self._tls_files:
      certfile, keyfile = self._tls_files
      with open(keyfile, "rb") as key, open(certfile, "rb") as cert:
        credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
      self._server.add_secure_port(f"{address.in_url(self._host)}:{self._port}", credentials)
    else:
      self._server.add_insecure_port(f"{address.in_url(self._host)}:{self._port}")
    await self._server.start()
    await self._server.wait_for_termination()


class KmnistModelServer(ModelServer):
  """ModelServer: one REST process and gRPC (none if grpc_port is 0), both bound to `host`."""

  def __init__(
    self,
    host: str,
    http_port: int,
    grpc_port: int,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    access_log: bool = False,
    grace_period: int = 10,
    tls_files: tuple[str, str] | None = None,
    cors_allowed_origins: tuple[str, ...] = (),
    operations: gate.Operations | None = None,
    drain_seconds: float = 5.0,
  ):
    super().__init__(
      http_port=http_port,
      grpc_port=grpc_port,
      workers=1,
      enable_grpc=bool(grpc_port),
      enable_docs_url=False,
      enable_latency_logging=False,
      grace_period=grace_period,
      ssl_certfile=tls_files and tls_files[0],
      ssl_keyfile=tls_files and tls_files[1],
    )
    self.http_port = http_port  # kserve moves its default port 8080 to 8443 for https; not ours
    self.tls_files = tls_files
    self.host = host
    self.max_request_bytes = max_request_bytes
    self.access_log = access_log
    self.cors_allowed_origins = cors_allowed_origins
    self.model_repository_extension = FollowBaseRepository(model_registry=self.registered_models)
    self.operations = operations or gate.Operations(health.Health(self.registered_models))
    self.operations.health.registry = self.registered_models
    self.drain_seconds = drain_seconds
    # The heavy work (parsing, inference, the page's PNGs) runs on the loop's default executor:
    # one thread per core, so the event loop (and its probes) competes with few threads for the GIL.
    self.max_asyncio_workers = os.cpu_count() or 1

    async def ready():  # Open Inference's ServerReady (gRPC): the same readiness as REST's
      return self.operations.health.ready()[0]

    self.dataplane.ready = ready

  def start(self, models) -> None:
    """As ModelServer.start with one worker, with the servers bound to `host`."""
    self._register_and_check_atleast_one_model_is_ready(models)
    self._rest_server = KmnistRESTServer(
      self.host,
      self.max_request_bytes,
      self.access_log,
      self.cors_allowed_origins,
      self.operations,
      data_plane=self.dataplane,
      model_repository_extension=self.model_repository_extension,
      http_port=self.http_port,
      grace_period=self.grace_period,
      event_loop=self.event_loop,
      timeout_keep_alive=self.timeout_keep_alive,
      ssl_certfile=self.ssl_certfile,
      ssl_keyfile=self.ssl_keyfile,
    )
    self.servers.append(self._rest_server.start())
    if self.enable_grpc:
      self._grpc_server = KmnistGRPCServer(
        self.host,
        self.grpc_port,
        self.dataplane,
        self.model_repository_extension,
        self.max_request_bytes,
        self.grace_period,
        self.tls_files,
        self.operations,
      )
      self.servers.append(self._grpc_server.start(self.max_threads))
    self.setup_event_loop()
    asyncio.run(self.serve())

  async def serve(self) -> None:
    """Serves until SIGTERM (or SIGINT), then drains: readiness false, new requests refused, the
    ones in flight finished (at most drain_seconds), then both servers stopped."""
    loop, signalled = asyncio.get_running_loop(), asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
      loop.add_signal_handler(sig, signalled.set)
    servers = [asyncio.ensure_future(server) for server in self.servers]
    waiting = asyncio.ensure_future(signalled.wait())
    done, _ = await asyncio.wait([waiting, *servers], return_when=asyncio.FIRST_COMPLETED)
    for task in done - {waiting}:  # a server that stopped by itself: its error, if any
      task.result()
    logger.info(
      "SIGTERM: draining (at most %g s; readiness false, new requests 503)", self.drain_seconds
    )
    left = await self.operations.health.drain(self.drain_seconds)
    logger.info("drained (%d requests still in flight); stopping", left)
    self._rest_server._server.should_exit = True
    if self._grpc_server is not None:
      # A call gRPC took but whose handler had not started yet is not in flight to the drain: with
      # this grace it still runs, and is refused (UNAVAILABLE, retried) instead of CANCELLED.
      await self._grpc_server._server.stop(grace=max(self.drain_seconds, 1))
    await asyncio.gather(*servers, return_exceptions=True)
    for model in list(self.registered_models.get_models().values()):
      model.stop()
    self.operations.log.close()
