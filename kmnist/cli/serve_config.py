"""kmnist-serve's flags for what it serves and to whom: TF Serving's model config file, its request
batching, and CORS. Defined and checked here, before TensorFlow loads, as serve.py does its own.
"""

import dataclasses

from absl import flags

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
    entries, source = model_config.from_flags(model, fv.model_name), None
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
  return Settings(entries, source, batching, tuple(fv.cors_allowed_origins))


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
