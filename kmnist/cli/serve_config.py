"""kmnist-serve's flags for what it serves and to whom: TF Serving's model config file, its request
batching, CORS, and the operator's (the API key, request logs, the drain, the bound on requests in
flight). Defined and checked here, before TensorFlow loads, as serve.py does its own.
"""

import dataclasses
from pathlib import Path

from absl import flags

from kmnist.serve.operations import api_key, request_log, telemetry
from kmnist.serve.repository import batching_parameters, model_config
from kmnist.serve.web import address
from kmnist.util.errors import KmnistError


@dataclasses.dataclass
class Settings:
  """What the flags ask kmnist-serve to serve: the models (model_config.ModelEntry), where they
  come from (the config file flag, or None for --model), batching (None: off), CORS origins."""

  entries: list
  source: str | None
  batching: batching_parameters.Parameters | None
  cors_allowed_origins: tuple[str, ...]
  api_keys: tuple[bytes, ...] | None = None


def define_flags(fv: flags.FlagValues) -> None:
  flags.DEFINE_string(
    "model_config_file",
    None,
    "TF Serving's model config file: a ModelServerConfig in protobuf text format listing the "
    "models to serve (name, base_path, model_platform, model_version_policy, version_labels); "
    "instead of --model and --model_name.",
    flag_values=fv,
  )
  flags.DEFINE_float(
    "model_config_file_poll_wait_seconds",
    0,
    "Seconds between reads of --model_config_file, so models can be added and removed while "
    "serving; 0: read once, at start (TF Serving's default).",
    flag_values=fv,
  )
  flags.DEFINE_boolean(
    "enable_batching",
    False,
    "Run concurrent requests to the same model version as one batch (TF Serving's flag).",
    flag_values=fv,
  )
  flags.DEFINE_string(
    "batching_parameters_file",
    None,
    "TF Serving's BatchingParameters in protobuf text format (max_batch_size, "
    "batch_timeout_micros, num_batch_threads, max_enqueued_batches, allowed_batch_sizes); "
    "default: TF Serving's defaults. Needs --enable_batching.",
    flag_values=fv,
  )
  flags.DEFINE_list(
    "cors_allowed_origins",
    [],
    "Origins (scheme://host[:port], or *) whose pages may call this server's REST API from a "
    "browser (CORS); default: none.",
    flag_values=fv,
  )
  define_operator_flags(fv)


def define_operator_flags(fv: flags.FlagValues) -> None:
  flags.DEFINE_string(
    "api_key_file",
    None,
    "File of API keys, one per line: requests must send one as Authorization: Bearer <key> (gRPC: "
    "the same metadata); the probes and the page stay open. Default: no key needed.",
    flag_values=fv,
  )
  flags.DEFINE_float(
    "drain_seconds",
    5,
    "On SIGTERM: seconds the requests in flight may take to finish (new ones get 503) before "
    "the server exits.",
    lower_bound=0,
    flag_values=fv,
  )
  flags.DEFINE_integer(
    "max_requests_in_flight",
    128,
    "Requests worked on at once; one more is refused with 429 (gRPC RESOURCE_EXHAUSTED) and "
    "Retry-After.",
    lower_bound=1,
    flag_values=fv,
  )
  flags.DEFINE_string(
    "request_log_file",
    None,
    "JSON-lines request log of --model's requests (a config file's models: their logging_config).",
    flag_values=fv,
  )
  flags.DEFINE_float(
    "request_log_sampling_rate",
    1.0,
    "Share of requests logged to --request_log_file (TF Serving's sampling_rate).",
    lower_bound=0,
    upper_bound=1,
    flag_values=fv,
  )
  flags.DEFINE_boolean(
    "request_log_inputs", False, "Request logs carry the input pixels too.", flag_values=fv
  )


def check_flags(fv, model) -> Settings:
  """The settings the flags ask for; `model` is --model's path (or its default)."""
  if fv.model_config_file is not None:
    for name in ("model", "model_name"):
      if fv[name].present:
        raise KmnistError(
          f"--{name} and --model_config_file both say which models to serve; give one (the "
          "config file names each model and its base_path)"
        )
    entries = model_config.read(fv.model_config_file)
    source = f"--model_config_file={fv.model_config_file}"
  else:
    logging = None
    if fv.request_log_file is not None:
      path = Path(fv.request_log_file)
      logging = request_log.Logging(path, fv.request_log_sampling_rate, fv.request_log_inputs)
    entries, source = model_config.from_flags(model, fv.model_name, logging), None
  if fv.request_log_file is not None and fv.model_config_file is not None:
    raise KmnistError(
      "--request_log_file is for --model; with --model_config_file give each model a "
      'logging_config { log_collector_config { filename_prefix: "/logs/cnn" } }'
    )
  if fv.model_config_file_poll_wait_seconds < 0:
    raise KmnistError(
      f"--model_config_file_poll_wait_seconds={fv.model_config_file_poll_wait_seconds:g} must "
      "be 0 (read once) or positive"
    )
  if fv.batching_parameters_file is not None and not fv.enable_batching:
    raise KmnistError("--batching_parameters_file is set without --enable_batching; add it")
  batching = None
  if fv.enable_batching:
    batching = (
      batching_parameters.read(fv.batching_parameters_file)
      if fv.batching_parameters_file is not None
      else batching_parameters.Parameters()
    )
  for origin in fv.cors_allowed_origins:
    why = origin_problem(origin)
    if why:
      raise KmnistError(f"--cors_allowed_origins: {origin!r} {why}")
  keys = api_key.read(fv.api_key_file) if fv.api_key_file is not None else None
  telemetry.check()
  return Settings(entries, source, batching, tuple(fv.cors_allowed_origins), keys)


def origin_problem(origin: str) -> str | None:
  """Why `origin` is not an origin as browsers send it (scheme://host[:port]) nor *, or None."""
  if origin == "*":
    return None
  scheme, sep, rest = origin.partition("://")
  if not sep or scheme not in ("http", "https") or not rest or "/" in rest:
    return "is not an origin: give scheme://host[:port], e.g. https://example.com, or *"
  return None


def announce(fv, served, log, tls_files=None) -> None:
  """One line per model served: where it comes from and where to reach it."""
  url = f"{'https' if tls_files else 'http'}://{address.in_url(fv.host)}:{fv.http_port}"
  grpc = f"{fv.host}:{fv.grpc_port}{' (TLS)' if tls_files else ''}" if fv.grpc_port else "off"
  for name in served.names:
    versions = served.versions(name)
    follows = (
      f"following {versions.path} every {fv.poll_seconds:g} s"
      if versions.poll_seconds
      else "this version only"
    )
    log.info(
      "model %s (%s): page %s/, TF Serving REST %s/v1/models/%s:predict, Open Inference %s/v2, "
      "gRPC %s",
      name,
      follows,
      url,
      url,
      name,
      url,
      grpc,
    )
