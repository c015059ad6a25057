"""Pictures of what the model learned, for a run just trained and for an export read back from disk.

`write_pictures` draws weights.png (what the layer that looks at the pixels learned: per model),
confusion_matrix.png and mistakes.png (figures.py) from plain arrays; `draw_export` does it for an
existing SavedModel (kmnist-visualize), reading the weights from its variables and scoring the test
set through its `serving_default` signature, so the pictures show the model that is served.
"""

from pathlib import Path

import numpy as np
import tensorflow as tf

from kmnist import files, metrics
from kmnist.data import IMAGE_SHAPE, NUM_CLASSES, Split
from kmnist.errors import KmnistError
from kmnist.export import saved_model
from kmnist.visualize import figures

PICTURES = ("weights.png", "confusion_matrix.png", "mistakes.png")
# The layer whose kernel weights.png draws: the one that looks at the pixels.
PIXEL_LAYERS = {"softmax": "logits", "mlp": "hidden1", "cnn": "conv1"}
# A SavedModel's variables must reproduce its own logits up to float32 rounding.
MAX_LOGIT_DIFF = 1e-3


def weights_figure(model_name: str, kernel: np.ndarray):
  """What the layer that looks at the pixels learned: the tutorial's digit maps (softmax), the
  hidden units' input weights (mlp), the first convolution's filters (cnn)."""
  if model_name == "softmax":
    return figures.weights_figure(kernel)
  if model_name == "mlp":
    return figures.hidden_units_figure(kernel)
  return figures.filters_figure(kernel)


def pixel_kernel(model, model_name: str) -> np.ndarray:
  """The kernel weights.png draws, from a Keras model."""
  return model.get_layer(PIXEL_LAYERS[model_name]).get_weights()[0]


def write_pictures(
  out_dir, model_name: str, kernel: np.ndarray, test: Split, test_logits: np.ndarray
) -> dict[str, Path]:
  """Writes weights.png, confusion_matrix.png and mistakes.png; returns {name: path}."""
  out_dir = Path(out_dir)
  counts = metrics.confusion_matrix(test.labels, np.asarray(test_logits).argmax(-1))
  drawn = {
    "weights.png": weights_figure(model_name, kernel),
    "confusion_matrix.png": figures.confusion_figure(counts),
    "mistakes.png": figures.mistakes_figure(test.images, test.labels, test_logits),
  }
  return {name: figures.save_png(fig, out_dir / name) for name, fig in drawn.items()}


def read_pixel_kernel(saved_model_dir) -> tuple[str, np.ndarray, np.ndarray | None]:
  """(model name, the kernel weights.png draws, a softmax regression's bias), from a SavedModel."""
  loaded = tf.saved_model.load(str(saved_model_dir))
  variables = [v.numpy() for v in getattr(loaded, "variables", [])]
  return kernel_from_variables(variables, saved_model_dir)


def kernel_from_variables(variables, saved_model_dir) -> tuple[str, np.ndarray, np.ndarray | None]:
  """Which kmnist model `variables` (a SavedModel's, as arrays) belong to, told by their shapes, and
  the kernel weights.png draws (and the bias, for a softmax regression)."""
  pixels = int(np.prod(IMAGE_SHAPE))
  convolutions = [v for v in variables if v.ndim == 4 and v.shape[2] == 1]
  dense = [v for v in variables if v.ndim == 2 and v.shape[0] == pixels]
  biases = [v for v in variables if v.shape == (NUM_CLASSES,)]
  if len(convolutions) == 1:
    return "cnn", convolutions[0], None
  if len(dense) == 1 and dense[0].shape[1] != NUM_CLASSES:
    return "mlp", dense[0], None
  if len(dense) == 1 and len(biases) == 1:
    return "softmax", dense[0], biases[0]
  raise KmnistError(
    f"{saved_model_dir} is not a kmnist model: found none of a softmax regression's 784x10 "
    "kernel, an MLP's first 784xN kernel or a CNN's first convolution among its variables "
    f"{[v.shape for v in variables]}; pass a SavedModel written by kmnist-train"
  )


def check_weights_explain_logits(
  kernel, bias, images_uint8: np.ndarray, logits: np.ndarray, export
) -> None:
  """The softmax pictures draw these weights, so they must be the ones the served model computes
  with."""
  expected = images_uint8.reshape(len(images_uint8), -1).astype(np.float64) / 255.0 @ kernel + bias
  max_diff = float(np.max(np.abs(expected - logits)))
  if max_diff > MAX_LOGIT_DIFF:
    raise KmnistError(
      f"{export}'s variables do not compute its served logits (max |difference| {max_diff:.3g}); "
      "it is not a kmnist softmax regression: pass a SavedModel written by kmnist-train"
    )


def draw_export(model_dir, export, test: Split, run_metrics: dict) -> dict[str, Path]:
  """Draws the SavedModel `export`'s pictures and class report into `model_dir`.

  `run_metrics` is that directory's metrics.json ({} for a directory of its own); the class report
  is added to it. Returns {name: path}.
  """
  model_name, kernel, bias = read_pixel_kernel(export)
  outputs = saved_model.predict_saved_model(export, test.images)
  if model_name == "softmax":
    check_weights_explain_logits(kernel, bias, test.images, outputs["logits"], export)
  pictures = write_pictures(model_dir, model_name, kernel, test, outputs["logits"])
  if not run_metrics:  # A directory of its own for this export: say what the pictures are of.
    run_metrics = {
      "saved_model_dir": str(export),
      "test_examples": len(test),
      "test_accuracy": metrics.accuracy(outputs["class_id"], test.labels),
    }
  run_metrics = {**run_metrics, **metrics.class_report(test.labels, outputs["class_id"])}
  files.write_json_atomic(Path(model_dir) / "metrics.json", run_metrics)
  return pictures
