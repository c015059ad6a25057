"""OpenTelemetry traces of REST and gRPC requests, when the standard OTEL_* variables ask for them.

On when OTEL_TRACES_EXPORTER (otlp or console) or OTEL_EXPORTER_OTLP[_TRACES]_ENDPOINT is set
(and OTEL_SDK_DISABLED is not true); the SDK reads the rest of its settings (service name,
endpoint, sampler, headers) from the same variables. Needs the `telemetry` extra
(pip install "kmnist[telemetry]"): without it, kmnist-serve says so and exits before TensorFlow
loads. Spans: one per HTTP request (FastAPI's instrumentation) and one per gRPC call (gRPC's), with
their standard attributes; kmnist adds the model and the version that answered.
"""

import importlib.util
import os

from kmnist.util.errors import KmnistError

PACKAGES = ("opentelemetry.sdk", "opentelemetry.instrumentation.fastapi")
_provider = None  # the TracerProvider, once set up (tests pass their own)


def enabled(environ=os.environ) -> bool:
  if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
    return False
  exporter = environ.get("OTEL_TRACES_EXPORTER", "")
  endpoint = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get(
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
  )
  return exporter not in ("", "none") or (bool(endpoint) and exporter != "none")


def check(environ=os.environ) -> None:
  """Before TensorFlow loads: traces asked for need the extra."""
  if enabled(environ) and any(importlib.util.find_spec(p.split(".")[0]) is None for p in PACKAGES):
    raise KmnistError(
      "OTEL_* variables ask for traces, but OpenTelemetry's SDK is not installed; "
      'pip install "kmnist[telemetry]", or unset them'
    )


def setup(provider=None):
  """The TracerProvider to trace with: `provider`, or one made from the OTEL_* variables."""
  global _provider
  if provider is not None or not enabled():
    _provider = provider
    return _provider
  from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415 (the optional extra)
  from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
    BatchSpanProcessor,
    ConsoleSpanExporter,
  )

  _provider = TracerProvider()
  if os.environ.get("OTEL_TRACES_EXPORTER", "otlp") == "console":
    exporter = ConsoleSpanExporter()
  else:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
      OTLPSpanExporter,
    )

    exporter = OTLPSpanExporter()
  _provider.add_span_processor(BatchSpanProcessor(exporter))
  return _provider


def instrument_app(app):
  """The REST app, traced if traces are on."""
  if _provider is not None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # noqa: PLC0415

    FastAPIInstrumentor.instrument_app(
      app, tracer_provider=_provider, excluded_urls="/v2/health/.*,/metrics"
    )
  return app


def grpc_interceptors() -> tuple:
  """The gRPC server's tracing interceptor, if traces are on."""
  if _provider is None:
    return ()
  from opentelemetry.instrumentation.grpc import aio_server_interceptor  # noqa: PLC0415

  return (aio_server_interceptor(tracer_provider=_provider),)


def annotate(call) -> None:
  """The model and version on the current span (the request's), if traces are on."""
  if _provider is None:
    return
  from opentelemetry import trace  # noqa: PLC0415

  span = trace.get_current_span()
  span.set_attribute("kmnist.model", call.model)
  span.set_attribute("kmnist.model_version", call.version)
