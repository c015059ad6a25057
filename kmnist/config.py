"""Everything one training run needs, as plain values; checked before any data or device is touched."""

import dataclasses

from kmnist import data
from kmnist.errors import KmnistError

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker", "tpu")
# Strategies that mirror over one machine's devices, so splitting the CPU gives them replicas to mirror over.
CPU_REPLICA_STRATEGIES = ("auto", "mirrored")
# Here rather than in kmnist.tflite so that checking flags does not import TensorFlow.
TFLITE_VARIANTS = ("float", "dynamic", "int8")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  # The tutorial's schedule: 1000 steps of SGD on batches of 100 at learning rate 0.5.
  steps: int = 1000
  batch_size: int = 100
  learning_rate: float = 0.5
  seed: int = 0
  eval_every: int = 100
  steps_per_execution: int = 100
  strategy: str = "auto"
  cpu_replicas: int = 1
  data_dir: str = data.DEFAULT_DATA_DIR
  manual_dir: str | None = None
  model_dir: str = "runs/kmnist"
  restart: bool = False
  export_dir: str = "exported"
  export_version: int | None = None
  visualize: bool = True
  tflite: tuple[str, ...] = TFLITE_VARIANTS

  def validate(self) -> "TrainConfig":
    """Raises KmnistError naming the first bad flag and what would be accepted."""
    positive = ("steps", "batch_size", "eval_every", "steps_per_execution", "cpu_replicas")
    for name in positive:
      value = getattr(self, name)
      if not isinstance(value, int) or value <= 0:
        raise KmnistError(f"--{name}={value} must be a positive integer")
    if not self.learning_rate > 0 or self.learning_rate == float("inf"):
      raise KmnistError(f"--learning_rate={self.learning_rate} must be a positive, finite number (the tutorial uses 0.5)")
    if self.seed < 0:
      raise KmnistError(f"--seed={self.seed} must be >= 0")
    if self.steps % self.eval_every:
      raise KmnistError(
          f"--eval_every={self.eval_every} must divide --steps={self.steps} (validation runs every --eval_every steps)")
    if self.strategy not in STRATEGIES:
      raise KmnistError(f"--strategy={self.strategy} is not known; use one of {', '.join(STRATEGIES)}")
    if self.cpu_replicas > 1 and self.strategy not in CPU_REPLICA_STRATEGIES:
      raise KmnistError(
          f"--cpu_replicas={self.cpu_replicas} needs --strategy=mirrored or auto to have replicas to run "
          f"(--strategy={self.strategy} uses one CPU device per process); drop --cpu_replicas or change --strategy")
    if self.export_version is not None and self.export_version <= 0:
      raise KmnistError(f"--export_version={self.export_version} must be a positive integer (TF Serving versions)")
    self._validate_tflite()
    return self

  def _validate_tflite(self):
    flag, choices = f"--tflite={','.join(self.tflite)}", f"use a comma-separated list of {', '.join(TFLITE_VARIANTS)}"
    unknown = [v for v in self.tflite if v not in TFLITE_VARIANTS]
    if unknown:
      raise KmnistError(f"{flag}: {unknown[0]!r} is not a TFLite variant; {choices}")
    if not self.tflite:
      raise KmnistError(f"{flag} names no TFLite variant; {choices} (default: all three)")
    if len(set(self.tflite)) != len(self.tflite):
      raise KmnistError(f"{flag} names a variant twice; {choices}, each once")
