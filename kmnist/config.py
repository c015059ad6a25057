"""Everything one training run needs, as plain values, and the checks made before any work starts.

`TrainConfig` is the one source of defaults: the command line's flags take theirs from it, and each
model brings its own schedule (`SCHEDULES`), which values the user sets override. Nothing here
imports TensorFlow, so a bad flag or path is reported in a fraction of a second.
"""

import dataclasses
import json
import os
from pathlib import Path

from kmnist import files, mnist_files
from kmnist.errors import KmnistError

MODELS = ("softmax", "mlp", "cnn")
OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = (
  "constant",
  "cosine",
)  # cosine: linear warmup over --warmup_steps, then cosine decay to 0
STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker", "tpu")
# Strategies that mirror over one machine's devices, so splitting the CPU gives them replicas to
# mirror over.
CPU_REPLICA_STRATEGIES = ("auto", "mirrored")
TFLITE_VARIANTS = ("float", "dynamic", "int8")
DEFAULT_DATA_DIR = os.path.join("~", "tensorflow_datasets")  # TFDS's own default.
# The flags that decide the trained weights: a checkpoint is resumed only under the same values.
RESUME_FLAGS = (
  "model",
  "augment",
  "steps",
  "batch_size",
  "optimizer",
  "learning_rate",
  "lr_schedule",
  "warmup_steps",
  "label_smoothing",
  "seed",
  "eval_every",
)


@dataclasses.dataclass(frozen=True)
class Schedule:
  """A model's default training schedule; `eval_every` steps make one Keras epoch."""

  steps: int
  batch_size: int
  optimizer: str
  learning_rate: float
  lr_schedule: str
  warmup_steps: int
  label_smoothing: float
  eval_every: int


# (model, augment) -> its defaults. softmax is the tutorial's: 1000 steps of SGD on batches of 100
# at learning rate 0.5. Why the others are what they are: BUILD_NOTES.md, "Models".
SCHEDULES = {
  ("softmax", False): Schedule(1000, 100, "sgd", 0.5, "constant", 0, 0.0, 100),
  ("softmax", True): Schedule(1000, 100, "sgd", 0.5, "constant", 0, 0.0, 100),
  # 10 epochs of 550 batches of 100.
  ("mlp", False): Schedule(5500, 100, "adam", 2e-3, "cosine", 275, 0.0, 550),
  ("mlp", True): Schedule(11000, 100, "adam", 2e-3, "cosine", 275, 0.0, 550),
  # 5 epochs of 430 batches of 128 (55,040 images), half an epoch of warmup; 15 with --augment.
  ("cnn", False): Schedule(2150, 128, "adam", 3e-3, "cosine", 215, 0.1, 430),
  ("cnn", True): Schedule(6450, 128, "adam", 3e-3, "cosine", 215, 0.1, 430),
}
SCHEDULE_FIELDS = tuple(field.name for field in dataclasses.fields(Schedule))


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """One run. Schedule fields left None take the model's defaults (`SCHEDULES`) when created."""

  model: str = "softmax"
  augment: bool = False
  steps: int | None = None
  batch_size: int | None = None
  optimizer: str | None = None
  learning_rate: float | None = None
  lr_schedule: str | None = None
  warmup_steps: int | None = None
  label_smoothing: float | None = None
  eval_every: int | None = None
  seed: int = 0
  steps_per_execution: int = 100
  strategy: str = "auto"
  cpu_replicas: int = 1
  data_dir: str = DEFAULT_DATA_DIR
  manual_dir: str | None = None
  model_dir: str | None = (
    None  # runs/kmnist for the tutorial's model, runs/kmnist-<model>[-augment] else
  )
  restart: bool = False
  export_dir: str = "exported"
  export_version: int | None = None
  visualize: bool = True
  tflite: tuple[str, ...] = TFLITE_VARIANTS

  def __post_init__(self):
    if self.model not in MODELS:
      raise KmnistError(f"--model={self.model} is not known; use one of {', '.join(MODELS)}")
    defaults = SCHEDULES[self.model, bool(self.augment)]
    for name in SCHEDULE_FIELDS:
      if getattr(self, name) is None:
        object.__setattr__(self, name, getattr(defaults, name))  # frozen: set once, here
    if self.model_dir is None:
      suffix = (
        "" if self.model == "softmax" else f"-{self.model}" + ("-augment" if self.augment else "")
      )
      object.__setattr__(self, "model_dir", f"runs/kmnist{suffix}")

  def validate(self) -> "TrainConfig":
    """Raises KmnistError naming the first bad flag and what would be accepted."""
    positive = ("steps", "batch_size", "eval_every", "steps_per_execution", "cpu_replicas")
    for name in positive:
      value = getattr(self, name)
      if not isinstance(value, int) or value <= 0:
        raise KmnistError(f"--{name}={value} must be a positive integer")
    if not self.learning_rate > 0 or self.learning_rate == float("inf"):
      raise KmnistError(
        f"--learning_rate={self.learning_rate} must be a positive, finite number "
        f"({self.default_learning_rate_text()})"
      )
    if not 0 <= self.label_smoothing < 1:
      raise KmnistError(f"--label_smoothing={self.label_smoothing} must be at least 0 and below 1")
    for name, choices in (("optimizer", OPTIMIZERS), ("lr_schedule", LR_SCHEDULES)):
      if getattr(self, name) not in choices:
        raise KmnistError(
          f"--{name}={getattr(self, name)} is not known; use one of {', '.join(choices)}"
        )
    if not 0 <= self.warmup_steps < self.steps or (
      self.warmup_steps and self.lr_schedule != "cosine"
    ):
      raise KmnistError(
        f"--warmup_steps={self.warmup_steps} must be at least 0 and below --steps={self.steps}, "
        "and needs --lr_schedule=cosine"
      )
    if self.seed < 0:
      raise KmnistError(f"--seed={self.seed} must be >= 0")
    if self.steps % self.eval_every:
      raise KmnistError(
        f"--eval_every={self.eval_every} must divide --steps={self.steps} (validation runs every "
        "--eval_every steps)"
      )
    if self.strategy not in STRATEGIES:
      raise KmnistError(
        f"--strategy={self.strategy} is not known; use one of {', '.join(STRATEGIES)}"
      )
    if self.cpu_replicas > 1 and self.strategy not in CPU_REPLICA_STRATEGIES:
      raise KmnistError(
        f"--cpu_replicas={self.cpu_replicas} needs --strategy=mirrored or auto to have "
        f"replicas to run (--strategy={self.strategy} uses one CPU device per process); drop "
        "--cpu_replicas or change --strategy"
      )
    if self.strategy == "multi_worker":  # the cluster is part of the run's configuration
      check_tf_config(os.environ.get("TF_CONFIG"))
    if self.export_version is not None and self.export_version <= 0:
      raise KmnistError(
        f"--export_version={self.export_version} must be a positive integer (TF Serving versions)"
      )
    self._validate_tflite()
    return self

  def _validate_tflite(self):
    flag, choices = (
      f"--tflite={','.join(self.tflite)}",
      f"use a comma-separated list of {', '.join(TFLITE_VARIANTS)}",
    )
    unknown = [v for v in self.tflite if v not in TFLITE_VARIANTS]
    if unknown:
      raise KmnistError(f"{flag}: {unknown[0]!r} is not a TFLite variant; {choices}")
    if not self.tflite:
      raise KmnistError(f"{flag} names no TFLite variant; {choices} (default: all three)")
    if len(set(self.tflite)) != len(self.tflite):
      raise KmnistError(f"{flag} names a variant twice; {choices}, each once")

  def check_paths(self) -> "TrainConfig":
    """Checks what the run will touch on disk, before TensorFlow starts.

    The directories it writes are writable, a requested export version is free, and the MNIST
    files in a --manual_dir are the genuine ones (worth saying even when the data is prepared).
    """
    if self.manual_dir:
      mnist_files.check_manual_dir(self.manual_dir)
    for flag, path in (
      ("--model_dir", self.model_dir),
      ("--export_dir", self.export_dir),
      ("--data_dir", self.data_dir),
    ):
      files.check_writable_directory(path, flag)
    if self.export_version is not None:
      files.free_version(self.export_bases(), self.export_version)
    return self

  def export_bases(self) -> list[Path]:
    """The version bases under --export_dir: saved_model/ (TF Serving's) and tflite/."""
    return [Path(self.export_dir) / "saved_model", Path(self.export_dir) / "tflite"]

  def resume_values(self) -> dict:
    return {name: getattr(self, name) for name in RESUME_FLAGS}

  def default_learning_rate_text(self) -> str:
    """How the default compares, for messages about --learning_rate."""
    default = SCHEDULES[self.model, bool(self.augment)].learning_rate
    if self.model == "softmax":
      return f"the tutorial uses {default:g}"
    return f"the default for --model={self.model} is {default:g}"


def check_tf_config(tf_config: str | None) -> None:
  """Fails, naming the problem, unless TF_CONFIG places this worker in a cluster.

  TensorFlow's own errors for a bad TF_CONFIG are tracebacks deep in the cluster resolver, or a
  silent hang. An unset TF_CONFIG is refused too: TensorFlow would run a cluster of one, and a
  TF_CONFIG forgotten on N machines would make N separate runs that each write outputs as the chief.
  """
  example = (
    'e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}\''
  )
  if not tf_config:
    raise KmnistError(
      "--strategy=multi_worker needs TF_CONFIG, naming the cluster and this worker's place in "
      f"it, and it is not set: set it on every worker ({example}), or use --strategy=auto to "
      "train on this machine alone"
    )
  try:
    parsed = json.loads(tf_config)
    cluster, task = parsed["cluster"], parsed["task"]
    task_type, index = task["type"], task["index"]
    hosts = cluster[task_type]
  except (ValueError, KeyError, TypeError) as e:
    raise KmnistError(
      f"TF_CONFIG is not a valid cluster description ({type(e).__name__}: {e}); {example}"
    ) from None
  if not isinstance(index, int) or not 0 <= index < len(hosts):
    raise KmnistError(
      f"TF_CONFIG task index {index!r} is outside the {len(hosts)} {task_type!r} addresses of "
      f"its cluster; number the workers 0..{len(hosts) - 1}"
    )
