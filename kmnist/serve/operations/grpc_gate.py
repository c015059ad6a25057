"""gRPC's gate: the API key, admission and the call's metrics and log (operations/gate.py), and
one-line errors: a client's mistake is INVALID_ARGUMENT or NOT_FOUND with one log line, not kserve's
traceback; a refusal is UNAVAILABLE or RESOURCE_EXHAUSTED with `retry-after` in its trailers.
"""

import logging

import grpc
from kserve import errors as kserve_errors
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor

from kmnist.serve.operations import api_key, gate, health, metrics, telemetry
from kmnist.serve.repository.batching import QueueFullError
from kmnist.serve.repository.servable import BadRequest
from kmnist.serve.repository.versions import UnknownLabelError, VersionNotFoundError

logger = logging.getLogger("kmnist.serve")


class GrpcGate(ExceptionToStatusInterceptor):
  CODES = {
    BadRequest: grpc.StatusCode.INVALID_ARGUMENT,
    kserve_errors.ModelNotFound: grpc.StatusCode.NOT_FOUND,
    VersionNotFoundError: grpc.StatusCode.NOT_FOUND,
    UnknownLabelError: grpc.StatusCode.INVALID_ARGUMENT,
    QueueFullError: grpc.StatusCode.UNAVAILABLE,
  }

  def __init__(self, operations: gate.Operations | None = None):
    super().__init__()
    self.ops = operations or gate.Operations(health.Health())

  async def intercept(self, method, request, context, method_name):
    keys, name = self.ops.keys, method_name.rsplit("/", 1)[-1]
    call = gate.grpc_call(method_name, request)
    if keys is not None and name not in api_key.OPEN_METHODS:
      metadata = {k: v for k, v in (context.invocation_metadata() or ())}
      if not keys.allows(metadata.get("authorization")):
        gate.log_refusal("401", "UNAUTHENTICATED %s: no valid API key", method_name)
        if call is not None:
          self.ops.finish(call, "UNAUTHENTICATED")
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, api_key.MISSING)
    if call is None:
      return await super().intercept(method, request, context, method_name)

    async def admitted(request, context):
      with self.ops.health.admitted():
        metrics.IN_FLIGHT.inc()
        try:
          return await method(request, context)
        finally:
          metrics.IN_FLIGHT.dec()

    token = metrics.CURRENT.set(call)
    try:
      return await super().intercept(admitted, request, context, method_name)
    finally:
      metrics.CURRENT.reset(token)
      telemetry.annotate(call)
      code = context.code()
      self.ops.finish(call, getattr(code, "name", None) or "OK")

  async def handle_exception(self, ex, request_or_iterator, context, method_name):
    if isinstance(ex, health.RefusedError):
      gate.log_refusal(ex.grpc_code, "%s %s: %s", ex.grpc_code, method_name, ex)
      context.set_trailing_metadata((("retry-after", str(health.RETRY_AFTER_SECONDS)),))
      await context.abort(grpc.StatusCode[ex.grpc_code], str(ex))
    for kind, code in self.CODES.items():
      if isinstance(ex, kind):
        logger.warning("%s %s: %s", code.name, method_name, ex)
        await context.abort(code, str(ex))
    await super().handle_exception(ex, request_or_iterator, context, method_name)
