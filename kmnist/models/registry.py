"""The models kmnist trains, by name: one entry each, holding everything the other stages ask of it.

An entry names the model's builder, its default schedule (with and without --augment) and the kind
of picture that shows what its first layer learned. The configuration, the flags, the pictures, the
exports and the server read the entries; a new model is one module plus one `register` call.

No TensorFlow here (the commands check --model before TensorFlow starts): a builder is named as
"module:function" and imported when a model is built.

Every model takes float32 images [N, 28, 28] in [0, 1] and returns 10 logits; the exports add the
pixel scaling and the softmax around it, so a model module holds only its layers.
"""

import dataclasses
import importlib
from collections.abc import Callable

import numpy as np

from kmnist.data.spec import NUM_CLASSES
from kmnist.util.errors import KmnistError

# What weights.png draws of the layer that looks at the pixels (kmnist.visualize.figures):
#   digit_maps    a [784, 10] kernel as ten 28x28 maps, one per digit; the model is linear in the
#                 pixels, so a pixel times its weight is evidence for or against a digit (the page's
#                 evidence map)
#   hidden_units  a [784, N] kernel: the input weights of the strongest hidden units
#   filters       a [3, 3, 1, N] convolution kernel: the first layer's filters
PICTURE_KINDS = ("digit_maps", "hidden_units", "filters")


@dataclasses.dataclass(frozen=True)
class Schedule:
  """A model's default training schedule; `eval_every` steps make one Keras epoch.

  `warmup` is a share of the steps, so a run with other --steps keeps the model's proportions.
  """

  steps: int
  batch_size: int
  optimizer: str
  learning_rate: float
  lr_schedule: str
  warmup: float
  label_smoothing: float
  eval_every: int


@dataclasses.dataclass(frozen=True)
class Entry:
  """One model: its name, how to build it, its schedules, and what its picture draws."""

  name: str
  builder: str | Callable  # "module:function" (imported when built), or the function itself
  schedule: Schedule
  augment_schedule: Schedule  # the schedule under --augment
  picture: str | None  # one of PICTURE_KINDS, or None: no weights.png
  pixel_layer: str | None  # the layer whose kernel the picture draws
  description: str

  def default_schedule(self, augment: bool) -> Schedule:
    return self.augment_schedule if augment else self.schedule

  def build(self):
    builder = self.builder
    if isinstance(builder, str):
      module, function = builder.split(":")
      builder = getattr(importlib.import_module(module), function)
    return builder()


MODELS: dict[str, Entry] = {}


def register(entry: Entry) -> Entry:
  """Adds a model (a test may register one of its own); its name must be new."""
  if entry.name in MODELS:
    raise ValueError(f"a model named {entry.name!r} is already registered")
  if entry.picture not in (*PICTURE_KINDS, None):
    raise ValueError(f"picture {entry.picture!r} is not one of {PICTURE_KINDS} or None")
  MODELS[entry.name] = entry
  return entry


def get(name: str) -> Entry:
  if name not in MODELS:
    raise KmnistError(f"--model={name} is not known; use one of {', '.join(MODELS)}")
  return MODELS[name]


def build(name: str = "softmax"):
  """A new, uncompiled Keras model of logits."""
  return get(name).build()


def describe_schedules() -> str:
  """Each model's default schedules, for --help."""
  lines = []
  for entry in MODELS.values():
    variants = {"": entry.schedule, " --augment": entry.augment_schedule}
    if entry.augment_schedule == entry.schedule:
      variants = {"": entry.schedule}
    for flag, s in variants.items():
      extra = f", warmup {s.warmup:.3g} of the steps" if s.warmup else ""
      extra += f", label smoothing {s.label_smoothing:g}" if s.label_smoothing else ""
      lines.append(
        f"{entry.name}{flag}: {s.steps} steps of {s.batch_size}, {s.optimizer} at "
        f"{s.learning_rate:g} ({s.lr_schedule}{extra}), validation every {s.eval_every}"
      )
  return "; ".join(lines)


def predict_logits(model, images_uint8: np.ndarray, batch_size: int = 1000) -> np.ndarray:
  """The model's logits on raw pixels, scaled as in training: the yardstick of every export.

  Direct calls, `batch_size` images at a time: `model.predict` first builds a tf.data pipeline and
  traces a function, a second of the default command's seconds for a matrix product.
  """
  chunks = [
    np.asarray(model(images_uint8[i : i + batch_size].astype(np.float32) / 255.0, training=False))
    for i in range(0, len(images_uint8), batch_size)
  ]
  return np.concatenate(chunks) if chunks else np.zeros((0, NUM_CLASSES), np.float32)


# The tutorial's: 1000 steps of SGD on batches of 100 at learning rate 0.5 (--augment changes only
# the data), with one validation pass at the end, as the tutorial scores once: each pass (and its
# checkpoint) costs ~40 ms of a run that trains in under a second (--eval_every=100 draws a curve).
_TUTORIAL = Schedule(1000, 100, "sgd", 0.5, "constant", 0.0, 0.0, 1000)
register(
  Entry(
    "softmax",
    "kmnist.models.softmax:build",
    _TUTORIAL,
    _TUTORIAL,
    "digit_maps",
    "logits",
    "the tutorial's softmax regression",
  )
)
# Why the others' schedules are what they are: BUILD_NOTES.md, "Settings, data, models".
register(
  Entry(
    "mlp",
    "kmnist.models.mlp:build",
    # 10 epochs of 550 batches of 100, 5 % warmup; 20 epochs with --augment, the same warmup.
    Schedule(5500, 100, "adam", 2e-3, "cosine", 0.05, 0.0, 550),
    Schedule(11000, 100, "adam", 2e-3, "cosine", 0.025, 0.0, 550),
    "hidden_units",
    "hidden1",
    "two hidden ReLU layers of 256",
  )
)
register(
  Entry(
    "cnn",
    "kmnist.models.cnn:build",
    # 5 epochs of 430 batches of 128 (55,040 images), 50 steps of warmup to a large peak, settled
    # by step 307, then restarted; 15 epochs with --augment, on one cosine at a gentler rate.
    Schedule(2150, 128, "adam", 2e-2, "warm_restart", 1 / 43, 0.1, 430),
    Schedule(6450, 128, "adam", 3e-3, "cosine", 1 / 30, 0.1, 430),
    "filters",
    "conv1",
    "three 3x3 convolutions with pooling and batch norm",
  )
)
