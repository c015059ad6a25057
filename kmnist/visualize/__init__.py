"""Pictures of what the model learned, for a run just trained and for an export read back from disk.

`write_pictures` draws weights.png, confusion_matrix.png and mistakes.png (figures.py) from plain
arrays; `draw_export` does it for an existing SavedModel (kmnist-visualize), reading the weights
from its variables and scoring the test set through its `serving_default` signature, so the pictures
show the model that is served.
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
# A SavedModel's variables must reproduce its own logits up to float32 rounding.
MAX_LOGIT_DIFF = 1e-3


def write_pictures(
    out_dir, kernel: np.ndarray, test: Split, test_logits: np.ndarray
) -> dict[str, Path]:
  """Writes weights.png, confusion_matrix.png and mistakes.png; returns {name: path}."""
  out_dir = Path(out_dir)
  counts = metrics.confusion_matrix(test.labels, np.asarray(test_logits).argmax(-1))
  drawn = {
      "weights.png": figures.weights_figure(kernel),
      "confusion_matrix.png": figures.confusion_figure(counts),
      "mistakes.png": figures.mistakes_figure(test.images, test.labels, test_logits),
  }
  return {name: figures.save_png(fig, out_dir / name) for name, fig in drawn.items()}


def read_dense_weights(saved_model_dir) -> tuple[np.ndarray, np.ndarray]:
  """The softmax regression's kernel [784, 10] and bias [10], from the SavedModel's variables."""
  variables = getattr(tf.saved_model.load(str(saved_model_dir)), "variables", [])
  shapes = {"kernel": (np.prod(IMAGE_SHAPE), NUM_CLASSES), "bias": (NUM_CLASSES,)}
  found = {
      name: [v.numpy() for v in variables if tuple(v.shape) == shape]
      for name, shape in shapes.items()
  }
  if any(len(arrays) != 1 for arrays in found.values()):
    raise KmnistError(
        f"{saved_model_dir} is not a kmnist softmax regression: expected one 784x10 kernel and one "
        "bias of 10 "
        f"among its variables, found {[tuple(v.shape) for v in variables]}; pass a SavedModel "
        "written by kmnist-train"
    )
  return found["kernel"][0], found["bias"][0]


def check_weights_explain_logits(
    kernel, bias, images_uint8: np.ndarray, logits: np.ndarray, export
) -> None:
  """The pictures draw these weights, so they must be the ones the served model computes with."""
  expected = images_uint8.reshape(len(images_uint8), -1).astype(np.float64) / 255.0 @ kernel + bias
  max_diff = float(np.max(np.abs(expected - logits)))
  if max_diff > MAX_LOGIT_DIFF:
    raise KmnistError(
        f"{export}'s variables do not compute its served logits (max |difference| {max_diff:.3g}); "
        f"it is not a kmnist softmax regression: pass a SavedModel written by kmnist-train"
    )


def draw_export(model_dir, export, test: Split, run_metrics: dict) -> dict[str, Path]:
  """Draws the SavedModel `export`'s pictures and class report into `model_dir`.

  `run_metrics` is that directory's metrics.json ({} for a directory of its own); the class
  report is added to it. Returns {name: path}.
  """
  kernel, bias = read_dense_weights(export)
  outputs = saved_model.predict_saved_model(export, test.images)
  check_weights_explain_logits(kernel, bias, test.images, outputs["logits"], export)
  pictures = write_pictures(model_dir, kernel, test, outputs["logits"])
  if not run_metrics:  # A directory of its own for this export: say what the pictures are of.
    run_metrics = {
        "saved_model_dir": str(export),
        "test_examples": len(test),
        "test_accuracy": metrics.accuracy(outputs["class_id"], test.labels),
    }
  run_metrics = {**run_metrics, **metrics.class_report(test.labels, outputs["class_id"])}
  files.write_json_atomic(Path(model_dir) / "metrics.json", run_metrics)
  return pictures
