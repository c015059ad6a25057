"""Everything one training run needs, as plain values, and the checks made before any work starts.

Each setting is declared once, here, as a `TrainConfig` field (kmnist.util.settings): its default,
its help text and its simple checks; kmnist-train makes its flags from the fields
(kmnist.cli.common). A model's schedule settings left unset take the model's defaults
(kmnist.models.registry), scaled to the steps asked for. Nothing here imports TensorFlow, so a bad
flag or path is reported in a fraction of a second.
"""

import dataclasses
from pathlib import Path

from kmnist.data import mnist_files
from kmnist.data.spec import DEFAULT_DATA_DIR
from kmnist.export import formats
from kmnist.models import registry
from kmnist.training import strategies
from kmnist.util import files
from kmnist.util.errors import KmnistError
from kmnist.util.settings import choices_of, setting

OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("constant", "cosine", "warm_restart")  # each said in --lr_schedule's help
WARMUP_SCHEDULES = ("cosine", "warm_restart")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """One run. Schedule settings left None take the model's defaults on creation (__post_init__)."""

  model: str = setting(
    "softmax",
    lambda: f"The model to train, with its default schedule: {registry.describe_schedules()}.",
    choices=lambda: tuple(registry.MODELS),
    weights=True,
  )
  augment: bool = setting(
    False,
    "Train on digits shifted and turned at random, seeded by (seed, step); the model's own "
    "schedule for it.",
    weights=True,
  )
  steps: int | None = setting(
    None, "Training steps (optimizer updates) in total", per_model=True, positive=True
  )
  batch_size: int | None = setting(
    None,
    "Global batch size, split evenly over the replicas",
    per_model=True,
    positive=True,
  )
  optimizer: str | None = setting(None, "Optimizer", choices=OPTIMIZERS, per_model=True)
  learning_rate: float | None = setting(None, "Learning rate (a schedule's peak)", per_model=True)
  lr_schedule: str | None = setting(
    None,
    "constant; cosine (linear warmup over --warmup_steps, then cosine decay to 0); or warm_restart "
    "(the same, reaching 0 at a seventh of --steps, then a cosine from half the peak to 0)",
    choices=LR_SCHEDULES,
    per_model=True,
  )
  warmup_steps: int | None = setting(
    None,
    "Linear warmup steps (cosine, warm_restart); unset, the model's share of --steps",
    per_model=True,
  )
  label_smoothing: float | None = setting(
    None,
    "Share of each label spread evenly over the ten digits (regularises)",
    per_model=True,
  )
  eval_every: int | None = setting(
    None,
    "Steps between validation passes (one Keras epoch); must divide --steps; unset, the model's "
    "epoch, or the largest divisor of --steps below it",
    per_model=True,
    positive=True,
  )
  seed: int = setting(
    0, "Seed of the batch order, the initial weights and the augmentation.", weights=True
  )
  steps_per_execution: int = setting(
    100,
    "Steps run per call into the compiled graph (speed only; results are identical); lowered to "
    "a divisor of --eval_every.",
    positive=True,
  )
  strategy: str = setting(
    "auto",
    "tf.distribute strategy: auto = mirrored over this machine's GPUs (or --cpu_replicas CPUs) if "
    "any, else default; multi_worker = MultiWorkerMirroredStrategy, cluster from TF_CONFIG.",
    choices=strategies.NAMES,
  )
  cpu_replicas: int = setting(
    1,
    "Split the CPU into this many logical devices before TensorFlow starts, so mirrored runs that "
    "many replicas on one machine (to try distribution without GPUs).",
    positive=True,
  )
  ray_workers: int = setting(
    0,
    "Train on this many Ray workers (Ray Train writes their TF_CONFIG for multi_worker; worker 0 "
    "writes the outputs); 0: no Ray. Needs the ray extra.",
  )
  ray_address: str | None = setting(
    None,
    "With --ray_workers: the Ray cluster (auto, ray://host:10001); default: RAY_ADDRESS or a "
    "local Ray started for the run.",
  )
  ray_use_gpu: bool = setting(False, "With --ray_workers: one GPU for each Ray worker.")
  data_dir: str = setting(DEFAULT_DATA_DIR, "TFDS data directory (prepared `mnist` is kept here).")
  manual_dir: str | None = setting(
    None,
    "Directory with the four original MNIST .gz files; default: the copies shipped with kmnist.",
  )
  model_dir: str | None = setting(
    None,
    "Run directory: checkpoints (a rerun with the same flags resumes), metrics.json, "
    "MANIFEST.json, the pictures and the TensorBoard logs (<model_dir>/logs); default: "
    "runs/kmnist for the tutorial's model, runs/kmnist-<model>[-augment] for the others.",
  )
  restart: bool = setting(
    False, "Discard the checkpoints in --model_dir and train from step 0 (default: resume them)."
  )
  export_dir: str = setting(
    "exported",
    "Export base: SavedModel in <export_dir>/saved_model/<version>/, TFLite in "
    "<export_dir>/tflite/<version>/.",
  )
  export_version: int | None = setting(
    None, "Version number of the export; default: one past the highest existing.", positive=True
  )
  visualize: bool = setting(
    True,
    "Draw the pictures (what the model learned, the confusion matrix, the surest mistakes) into "
    "--model_dir after training; --novisualize skips them.",
  )
  tflite: tuple[str, ...] = setting(
    formats.TFLITE_VARIANTS,
    "TFLite files to export, comma-separated: float, dynamic (dynamic-range quantized), int8 (full "
    "integer) raw-tensor files; float_classifier, int8_classifier image-classifier bundles for "
    "MediaPipe Tasks (RGB in, metadata inside).",
  )
  mediapipe_check: bool = setting(
    False,
    "Also run each image-classifier bundle through MediaPipe's ImageClassifier on the 10,000 test "
    "digits, held to its LiteRT accuracy (needs the `mobile` extra; seconds per bundle). Every "
    "file is checked against Keras with LiteRT either way.",
  )

  def __post_init__(self):
    schedule = registry.get(self.model).default_schedule(bool(self.augment))

    def default(name, value):
      if getattr(self, name) is None:
        object.__setattr__(self, name, value)  # frozen: set once, here

    # Defaults that depend on another setting follow the value it has in this run: validation every
    # model epoch, or the largest divisor of --steps below it; warmup the model's share of --steps.
    steps = self.steps if self.steps is not None else schedule.steps
    if isinstance(steps, int) and steps > 0:
      divisors = [d for d in range(1, min(steps, schedule.eval_every) + 1) if steps % d == 0]
      default("eval_every", divisors[-1])
      warms = (self.lr_schedule or schedule.lr_schedule) in WARMUP_SCHEDULES
      default("warmup_steps", round(schedule.warmup * steps) if warms else 0)
    default("warmup_steps", 0)  # a --steps that is no count of steps is refused by validate()
    for field in dataclasses.fields(self):
      if field.metadata["per_model"] and hasattr(schedule, field.name):
        default(field.name, getattr(schedule, field.name))
    if self.model_dir is None:
      suffix = "" if self.model == "softmax" else f"-{self.model}" + ("-augment" * self.augment)
      object.__setattr__(self, "model_dir", f"runs/kmnist{suffix}")

  def validate(self) -> "TrainConfig":
    """Raises KmnistError naming the first bad flag and what would be accepted."""
    fields = dataclasses.fields(self)
    for field in fields:
      value = getattr(self, field.name)
      positive = isinstance(value, int) and not isinstance(value, bool) and value > 0
      if field.metadata["positive"] and value is not None and not positive:
        raise KmnistError(f"--{field.name}={value} must be a positive integer")
    if not self.learning_rate > 0 or self.learning_rate == float("inf"):
      raise KmnistError(
        f"--learning_rate={self.learning_rate} must be a positive, finite number "
        f"({self.default_learning_rate_text()})"
      )
    if not 0 <= self.label_smoothing < 1:
      raise KmnistError(f"--label_smoothing={self.label_smoothing} must be at least 0 and below 1")
    for field in fields:  # --model was checked on creation, against the registry
      choices, value = choices_of(field), getattr(self, field.name)
      if field.name != "model" and choices and value not in choices:
        raise KmnistError(f"--{field.name}={value} is not known; use one of {', '.join(choices)}")
    if not 0 <= self.warmup_steps < self.steps:
      raise KmnistError(
        f"--warmup_steps={self.warmup_steps} must be at least 0 and below --steps={self.steps}"
      )
    if self.warmup_steps and self.lr_schedule not in WARMUP_SCHEDULES:
      needs = f"needs --lr_schedule=cosine or warm_restart (it is {self.lr_schedule})"
      raise KmnistError(f"--warmup_steps={self.warmup_steps} {needs}")
    if self.seed < 0:
      raise KmnistError(f"--seed={self.seed} must be >= 0")
    if self.steps % self.eval_every:
      raise KmnistError(
        f"--eval_every={self.eval_every} must divide --steps={self.steps} (validation runs every "
        "--eval_every steps)"
      )
    strategies.check_flags(self)  # the replicas and the cluster: TF_CONFIG's or Ray's
    formats.check_tflite_variants(self.tflite)
    if self.mediapipe_check:
      formats.check_mediapipe_check(self.tflite)
    return self

  def check_paths(self) -> "TrainConfig":
    """Checks what the run will touch on disk, before TensorFlow starts.

    The directories it writes are writable, a requested export version is free, and the MNIST
    files in a --manual_dir are the genuine ones (worth saying even when the data is prepared).
    """
    if self.manual_dir:
      mnist_files.check_manual_dir(self.manual_dir)
    for name in ("model_dir", "export_dir", "data_dir"):
      files.check_writable_directory(getattr(self, name), f"--{name}")
    if self.export_version is not None:
      files.free_version(self.export_bases(), self.export_version)
    return self

  def export_bases(self) -> list[Path]:
    """The version bases under --export_dir: saved_model/ (TF Serving's) and tflite/."""
    return [Path(self.export_dir) / "saved_model", Path(self.export_dir) / "tflite"]

  def resume_values(self) -> dict:
    """The values a checkpoint records: a rerun resumes it only under the same ones."""
    return {
      f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata["weights"]
    }

  def default_learning_rate_text(self) -> str:
    """How the default compares, for messages about --learning_rate."""
    default = registry.get(self.model).default_schedule(bool(self.augment)).learning_rate
    if self.model == "softmax":
      return f"the tutorial uses {default:g}"
    return f"the default for --model={self.model} is {default:g}"
