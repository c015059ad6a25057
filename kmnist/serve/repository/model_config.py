"""TF Serving's model config file (--model_config_file): which models to serve, read and checked.

The file is a ModelServerConfig in protobuf text format, parsed with TF Serving's own protos
(tensorflow_serving.config.model_server_config_pb2) and checked as TF Serving's ServerCore checks
it (unique names, absolute base paths, a platform), plus what kmnist-serve can serve (SavedModels:
model_platform "tensorflow"; names usable in URLs; labels naming versions the policy serves).
Every problem is one KmnistError naming the file, the line and the fix. `from_flags` makes the
same entry of --model and --model_name, so one model and several are served alike.
No TensorFlow here: the command line checks the file before TensorFlow starts.
"""

import dataclasses
import re
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from kmnist.serve.operations import request_log
from kmnist.serve.repository import version_policy
from kmnist.serve.repository.version_policy import Policy
from kmnist.util.errors import KmnistError, one_line
from kmnist.util.files import is_saved_model, saved_model_versions

LABEL = re.compile(r"[A-Za-z0-9_]+")  # TF Serving's REST API: a label is word characters
URL_UNSAFE = "/:?#% "
EXAMPLE = (
  'model_config_list { config { name: "cnn" base_path: "/models/cnn" model_platform: '
  '"tensorflow" } }'
)


def usable_in_urls(name: str) -> bool:
  """Whether a model name can stand in TF Serving's URLs (/v1/models/<name>...) as it is."""
  return bool(name) and not any(c in name for c in URL_UNSAFE)


@dataclasses.dataclass(frozen=True)
class ModelEntry:
  """One model to serve: its name, base path (or one version directory, from --model), version
  policy and labels ((label, version) pairs), and the line of the config file naming it."""

  name: str
  base_path: Path
  policy: Policy = version_policy.LATEST
  labels: tuple[tuple[str, int], ...] = ()
  line: int = 0
  logging: request_log.Logging | None = None  # its logging_config, or None: no request log

  def where(self, source: str | None) -> str:
    return (
      f"{source}: line {self.line}: model {self.name}" if source else f"--model={self.base_path}"
    )


def from_flags(model_path, model_name: str, logging=None) -> list[ModelEntry]:
  """The one model of --model and --model_name (and its request log flags)."""
  return [ModelEntry(model_name, Path(model_path), logging=logging)]


def read(path) -> list[ModelEntry]:
  """The models a config file lists, checked; KmnistError naming the line otherwise."""
  source = f"--model_config_file={path}"
  try:
    text = Path(path).read_text()
  except (OSError, UnicodeDecodeError) as e:
    raise KmnistError(f"{source} cannot be read ({one_line(e)}); give a readable file") from None
  return parse(text, source)


def parse_text(text: str, message, source: str, example: str):
  """`message` filled from protobuf text format (TF Serving's config files), or KmnistError naming
  the line and the problem."""
  try:
    return text_format.Parse(text, message)
  except text_format.ParseError as e:
    problem = re.sub(r"^\d+:\d+ : ", "", str(e)).rstrip(".")
    raise KmnistError(
      f"{source}: line {e.GetLine()}: {problem}; the file is a {message.DESCRIPTOR.name} in "
      f"protobuf text format, e.g. {example}"
    ) from None


def parse(text: str, source: str) -> list[ModelEntry]:
  config = parse_text(text, model_server_config_pb2.ModelServerConfig(), source, EXAMPLE)
  if config.WhichOneof("config") == "custom_model_config":
    line = _line_of(text, r"\bcustom_model_config\b")
    raise KmnistError(
      f"{source}: line {line}: custom_model_config is not supported; list the models in "
      "model_config_list"
    )
  configs = list(config.model_config_list.config)
  if not configs:
    raise KmnistError(f"{source}: line 1: the file lists no model; e.g. {EXAMPLE}")
  starts = _block_starts(text)
  entries, seen = [], set()
  for i, model in enumerate(configs):
    line = starts[i] if i < len(starts) else 1
    entry = _entry(model, line, source, seen)
    _check_versions(entry, text, source)
    entries.append(entry)
    seen.add(entry.name)
  return entries


def _entry(model, line: int, source: str, seen: set) -> ModelEntry:
  at = f"{source}: line {line}"
  name = model.name
  if not name:
    raise KmnistError(f'{at}: a config has no name; give each model a name: "cnn"')
  if not usable_in_urls(name):
    raise KmnistError(f"{at}: model name {name!r} cannot be used in a URL; give a plain name")
  if name in seen:  # TF Serving's words
    raise KmnistError(f"{at}: Illegal to list model {name} multiple times in config list")
  platform = model.model_platform or ("tensorflow" if model.model_type == 1 else "")
  if not platform:
    raise KmnistError(f'{at}: model {name} has no model_platform; add model_platform: "tensorflow"')
  if platform != "tensorflow":
    raise KmnistError(
      f"{at}: model {name} has model_platform {platform!r}; kmnist-serve serves SavedModels, "
      'model_platform: "tensorflow"'
    )
  base = Path(model.base_path)
  if not model.base_path or not base.is_absolute():  # as TF Serving requires
    raise KmnistError(
      f"{at}: Expected model {name} to have an absolute path; got base_path()="
      f"{model.base_path!r}; give the full path of its base, like /models/{name}"
    )
  if is_saved_model(base):
    raise KmnistError(
      f"{at}: model {name}'s base_path {base} is one version (it holds saved_model.pb); give "
      f"its parent, the base holding the integer versions"
    )
  if not base.is_dir():
    raise KmnistError(
      f"{at}: model {name}'s base_path {base} is not a directory; give the base holding its "
      "versions (like exported/saved_model, made absolute)"
    )
  policy = version_policy.from_proto(model.model_version_policy)
  if policy.kind == "specific" and not policy.versions:
    raise KmnistError(
      f"{at}: model {name}'s policy specific {{}} names no version; add versions: <number>"
    )
  labels = tuple(sorted(model.version_labels.items()))
  return ModelEntry(name, base, policy, labels, line, _logging(model, at))


def _logging(model, at: str) -> request_log.Logging | None:
  """A model's logging_config as TF Serving reads it: written to filename_prefix + ".jsonl"."""
  if not model.HasField("logging_config"):
    return None
  config = model.logging_config
  prefix = config.log_collector_config.filename_prefix
  rate = config.sampling_config.sampling_rate
  if not prefix or not Path(prefix).is_absolute():
    raise KmnistError(
      f"{at}: model {model.name}'s logging_config needs an absolute log_collector_config "
      f'{{ filename_prefix: "/logs/{model.name}" }} (its lines go to <prefix>.jsonl)'
    )
  if not 0 <= rate <= 1:
    raise KmnistError(f"{at}: model {model.name}'s sampling_rate {rate:g} must be in [0, 1]")
  return request_log.Logging(Path(prefix + ".jsonl"), rate)


def _check_versions(entry: ModelEntry, text: str, source: str) -> None:
  """The policy serves a version among those on disk now, and each label names one it serves."""
  found = saved_model_versions(entry.base_path)
  served = entry.policy.aspired(found)
  if not served:
    raise KmnistError(
      f"{source}: line {entry.line}: model {entry.name}: its policy ({entry.policy.describe()}) "
      f"serves none of the versions under {entry.base_path} (found: "
      f"{', '.join(map(str, found)) or 'none'}); export one there with kmnist-train"
    )
  for label, version in entry.labels:
    line = _line_of(text, rf"""key\s*:\s*["']{re.escape(label)}["']""", after=entry.line)
    at = f"{source}: line {line}: model {entry.name}"
    if not LABEL.fullmatch(label):
      raise KmnistError(
        f"{at}: version label {label!r} is not letters, digits and underscores (TF Serving's "
        "REST API takes no other); rename it"
      )
    if version not in served:
      numbers = ", ".join(map(str, served)) or "none"
      raise KmnistError(
        f"{at}: version label '{label}' names version {version}, which is not served (its "
        f"policy, {entry.policy.describe()}, serves {numbers} of the versions under "
        f"{entry.base_path}); name a served version"
      )


def _uncommented(text: str) -> str:
  """The text with `#` comments blanked (line numbers kept), so they cannot match a field."""
  return re.sub(r"#[^\n]*", "", text)


def _block_starts(text: str) -> list[int]:
  """The line of each `config {` block, in order (`model_config_list` itself does not match)."""
  text = _uncommented(text)
  return [text.count("\n", 0, m.start()) + 1 for m in re.finditer(r"\bconfig\s*:?\s*[{<]", text)]


def _line_of(text: str, pattern: str, after: int = 1) -> int:
  """The line of the first match of `pattern` on or after line `after` (else `after`)."""
  text = _uncommented(text)
  offset = sum(len(line) for line in text.splitlines(keepends=True)[: after - 1])
  match = re.compile(pattern).search(text, offset)
  return text.count("\n", 0, match.start()) + 1 if match else after
