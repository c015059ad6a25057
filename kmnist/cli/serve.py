"""kmnist-serve: the SavedModel served over HTTP and gRPC by KServe's model server, as TF Serving.

    kmnist-serve                      # newest export under exported/saved_model, else the reference
    kmnist-serve --model=exported/saved_model --http_port=8501 --grpc_port=8500
    kmnist-serve --host=0.0.0.0       # reachable from other machines (default: this one only)
    kmnist-serve --host=0.0.0.0 --ssl_certfile=cert.pem --ssl_keyfile=key.pem   # https, for phones

REST on --http_port: the drawing page at /, TF Serving's API under /v1/models/kmnist (:predict,
status, metadata), the Open Inference Protocol under /v2, Prometheus metrics at /metrics. gRPC on
--grpc_port: TF Serving's PredictionService and ModelService, and Open Inference's
GRPCInferenceService. A new version under the base is served --poll_seconds (plus its load time)
after it appears, without failing a request.
"""

import gc
import logging
import sys
from pathlib import Path

from absl import app, flags

from kmnist.cli import common, serve_config
from kmnist.predict import model_paths
from kmnist.serve.repository import model_config, versions
from kmnist.serve.web import address, tls
from kmnist.util.errors import KmnistError
from kmnist.util.files import saved_model_versions

RUN_EXPORTS = Path("exported") / "saved_model"  # where kmnist-train's default run exports
MODEL_NAME = "kmnist"


def default_model_base() -> Path:
  """The reference export's SavedModel base in the package (served when no run has exported one)."""
  return model_paths.reference_export() / "saved_model"


def default_model() -> Path:
  """exported/saved_model in the working directory if a run exported there, else the reference."""
  if saved_model_versions(RUN_EXPORTS):
    return RUN_EXPORTS
  return default_model_base()


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  flags.DEFINE_string(
    "model",
    None,
    "TF Serving model base path (integer version directories: the highest is "
    "served, new ones are followed) or one version directory. Default: exported/saved_model if "
    "it holds a version, else the reference export shipped in the package.",
    flag_values=fv,
  )
  flags.DEFINE_string(
    "model_name",
    MODEL_NAME,
    "The model's name in URLs and requests (TF Serving's --model_name).",
    flag_values=fv,
  )
  flags.DEFINE_string(
    "host",
    "127.0.0.1",
    "Address to listen on; 0.0.0.0 (or ::) for every interface.",
    flag_values=fv,
  )
  flags.DEFINE_integer(
    "http_port", 8501, "REST port (TF Serving's --rest_api_port).", flag_values=fv
  )
  flags.DEFINE_integer(
    "grpc_port", 8500, "gRPC port (TF Serving's --port); 0 turns gRPC off.", flag_values=fv
  )
  flags.DEFINE_float(
    "poll_seconds",
    1.0,
    "Seconds between looks at the base path for new "
    "versions (TF Serving's --file_system_poll_wait_seconds); 0: never look.",
    flag_values=fv,
  )
  flags.DEFINE_integer(
    "max_batch_size",
    1000,
    "Most examples in one request; more is refused with 400.",
    flag_values=fv,
  )
  flags.DEFINE_integer(
    "max_request_bytes",
    16 * 1024 * 1024,
    "Largest request body (REST) or message (gRPC); more is refused with 413 / RESOURCE_EXHAUSTED.",
    flag_values=fv,
  )
  flags.DEFINE_boolean("access_log", False, "Log one line per HTTP request.", flag_values=fv)
  tls.define_flags(fv)
  serve_config.define_flags(fv)
  # TF Serving's flag names. One thread each: TensorFlow's pools cost more CPU per call than they
  # save, for every model (a CNN digit: 515 vs 943 us), and the server answers one request at a
  # time, so CPU per request is its throughput. Only a CNN's large batches finish sooner on the
  # pools (0). BUILD_NOTES ("Serving (kmnist-serve)", "Performance") has the figures.
  flags.DEFINE_integer(
    "tensorflow_intra_op_parallelism",
    1,
    "Threads TensorFlow may use inside one op (0: TensorFlow's choice).",
    lower_bound=0,
    flag_values=fv,
  )
  flags.DEFINE_integer(
    "tensorflow_inter_op_parallelism",
    1,
    "Ops TensorFlow may run at once (0: TensorFlow's choice).",
    lower_bound=0,
    flag_values=fv,
  )


def check_flags(fv) -> serve_config.Settings:
  """Everything that can be checked before TensorFlow loads; returns what to serve."""
  for name in ("http_port", "grpc_port"):
    port, lowest = fv[name].value, 0 if name == "grpc_port" else 1
    if not lowest <= port <= 65535:
      raise KmnistError(
        f"--{name}={port} is not a port; give one from {lowest} to 65535"
        + (" (0: no gRPC)" if lowest == 0 else "")
      )
  if fv.http_port == fv.grpc_port:
    raise KmnistError(f"--http_port and --grpc_port are both {fv.http_port}; give two ports")
  if fv.poll_seconds < 0:
    raise KmnistError(f"--poll_seconds={fv.poll_seconds} must be 0 (never look) or positive")
  if fv.max_batch_size < 1:
    raise KmnistError(f"--max_batch_size={fv.max_batch_size} must be a positive integer")
  if fv.max_request_bytes < 4096:
    raise KmnistError(
      f"--max_request_bytes={fv.max_request_bytes} is too small for one digit; give at least 4096"
    )
  if not model_config.usable_in_urls(fv.model_name):
    raise KmnistError(
      f"--model_name={fv.model_name!r} cannot be used in a URL; give a plain name like kmnist"
    )
  model = Path(fv.model) if fv.model is not None else default_model()
  if fv.model_config_file is None:
    versions.resolve(model)
  tls.check(fv.ssl_certfile, fv.ssl_keyfile)
  settings = serve_config.check_flags(fv, model)
  for name in ("http_port", "grpc_port"):
    if fv[name].value:
      address.check_port_free(fv.host, fv[name].value, name)
  return settings


def configure_logging(access_log: bool) -> None:
  """kmnist-serve's own lines on stderr; kserve's and uvicorn's only for warnings and errors."""
  handler = logging.StreamHandler(sys.stderr)
  handler.setFormatter(logging.Formatter("%(asctime)s kmnist-serve: %(message)s", "%H:%M:%S"))
  ours = logging.getLogger("kmnist.serve")
  ours.handlers[:] = [handler]
  ours.setLevel(logging.INFO)
  ours.propagate = False
  for name in ("kserve", "kserve.trace"):
    logging.getLogger(name).setLevel(logging.WARNING)
  logging.getLogger("uvicorn.access").disabled = not access_log


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}; kmnist-serve takes only --flags")
  fv = flags.FLAGS
  settings = check_flags(fv)
  # kserve parses sys.argv when imported (its own flags, by prefix): let it see none of ours.
  sys.argv = sys.argv[:1]
  # TensorFlow and kserve load here, after the quick checks.
  import tensorflow as tf
  from kserve import logging as kserve_logging

  from kmnist.serve import model as model_lib
  from kmnist.serve import server as server_lib
  from kmnist.serve.operations import api_key, gate, health, telemetry
  from kmnist.serve.protocols import tf_serving_grpc
  from kmnist.serve.repository import batching, model_set

  tf.config.threading.set_intra_op_parallelism_threads(fv.tensorflow_intra_op_parallelism)
  tf.config.threading.set_inter_op_parallelism_threads(fv.tensorflow_inter_op_parallelism)
  kserve_logging.configure_logging()
  configure_logging(fv.access_log)
  # What start-up made (TensorFlow's and kserve's modules) is never freed: keep it out of the
  # garbage collector's scans, so the collection after each version swap takes ~5 ms, not ~0.4 s.
  gc.collect()
  gc.freeze()
  tls_files = tls.check(fv.ssl_certfile, fv.ssl_keyfile)
  telemetry.setup()
  keys = settings.api_keys and api_key.Keys(settings.api_keys)
  operations = gate.Operations(health.Health(max_in_flight=fv.max_requests_in_flight), keys)
  server = server_lib.KmnistModelServer(
    fv.host,
    fv.http_port,
    fv.grpc_port,
    fv.max_request_bytes,
    fv.access_log,
    tls_files=tls_files,
    cors_allowed_origins=settings.cors_allowed_origins,
    operations=operations,
    drain_seconds=fv.drain_seconds,
  )
  batcher = settings.batching and batching.Batcher(settings.batching)
  served = model_set.ServedModels(
    server.registered_models,
    tf_serving_grpc.load_and_warm_up,
    lambda name, versions: model_lib.KmnistModel(name, versions, fv.max_batch_size, batcher),
    fv.poll_seconds,
    settings.source,
  )
  operations.logging_of = served.logging_of
  served.apply(settings.entries)
  served.start(fv.model_config_file, fv.model_config_file_poll_wait_seconds)
  serve_config.announce(fv, served, logging.getLogger("kmnist.serve"), tls_files)
  server.start(list(server.registered_models.get_models().values()))
  return 0


def cli():
  """Console-script entry point (`kmnist-serve`)."""
  common.run_command("kmnist-serve", define_flags, main)


if __name__ == "__main__":
  cli()
