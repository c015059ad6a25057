"""Pictures of what the model learned, for a run just trained and for an export read back from disk.

`write_pictures` draws weights.png (what the layer that looks at the pixels learned: per model),
confusion_matrix.png and mistakes.png (figures.py) from plain arrays; `draw_export` does it for an
existing SavedModel (kmnist-visualize), reading the weights from its variables and scoring the test
set through its `serving_default` signature, so the pictures show the model that is served.
"""

from pathlib import Path

import numpy as np
import tensorflow as tf

from kmnist.data.splits import Split
from kmnist.export import record, saved_model
from kmnist.models import metrics, registry
from kmnist.util import files
from kmnist.util.errors import KmnistError
from kmnist.visualize import figures

PICTURES = ("weights.png", "confusion_matrix.png", "mistakes.png")
# A SavedModel's variables must reproduce its own logits up to float32 rounding.
MAX_LOGIT_DIFF = 1e-3
# How each picture kind of kmnist.models.registry is drawn.
WEIGHTS_FIGURES = {
  "digit_maps": figures.weights_figure,
  "hidden_units": figures.hidden_units_figure,
  "filters": figures.filters_figure,
}


def weights_figure(picture: str, kernel: np.ndarray):
  """What the layer that looks at the pixels learned, drawn as the model's registry entry says: the
  tutorial's digit maps, the hidden units' input weights, or the first convolution's filters."""
  return WEIGHTS_FIGURES[picture](kernel)


def pixel_kernel(model, model_name: str) -> np.ndarray | None:
  """The kernel weights.png draws, from a Keras model; None for a model without that picture."""
  layer = registry.get(model_name).pixel_layer
  return model.get_layer(layer).get_weights()[0] if layer else None


def write_pictures(
  out_dir, picture: str | None, kernel, test: Split, test_logits: np.ndarray
) -> dict[str, Path]:
  """Writes weights.png (unless `picture` is None), confusion_matrix.png and mistakes.png; returns
  {name: path}."""
  out_dir = Path(out_dir)
  counts = metrics.confusion_matrix(test.labels, np.asarray(test_logits).argmax(-1))
  drawn = {
    "weights.png": weights_figure(picture, kernel) if picture else None,
    "confusion_matrix.png": figures.confusion_figure(counts),
    "mistakes.png": figures.mistakes_figure(test.images, test.labels, test_logits),
  }
  return {name: figures.save_png(fig, out_dir / name) for name, fig in drawn.items() if fig}


def read_pixel_kernel(
  saved_model_dir, log=None
) -> tuple[dict, np.ndarray | None, np.ndarray | None]:
  """(what the export is (kmnist.export.record), the kernel weights.png draws, the bias of a model
  linear in the pixels), from a SavedModel."""
  loaded = tf.saved_model.load(str(saved_model_dir))
  variables = {v.name: v.numpy() for v in getattr(loaded, "variables", [])}
  about = record.describe(saved_model_dir, variables, log)
  return (about, *record.pixel_weights(about, variables))


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


def draw_export(model_dir, export, test: Split, run_metrics: dict, log=None) -> dict[str, Path]:
  """Draws the SavedModel `export`'s pictures and class report into `model_dir`.

  `run_metrics` is that directory's metrics.json ({} for a directory of its own); the class report
  is added to it. Returns {name: path}. `log` hears that an export from an older kmnist, which
  does not say what it is, was told by its variables.
  """
  about, kernel, bias = read_pixel_kernel(export, log)
  outputs = saved_model.predict_saved_model(export, test.images)
  if about["picture"] == "digit_maps":
    check_weights_explain_logits(kernel, bias, test.images, outputs["logits"], export)
  pictures = write_pictures(model_dir, about["picture"], kernel, test, outputs["logits"])
  if not run_metrics:  # A directory of its own for this export: say what the pictures are of.
    run_metrics = {
      "saved_model_dir": str(export),
      "test_examples": len(test),
      "test_accuracy": metrics.accuracy(outputs["class_id"], test.labels),
    }
  run_metrics = {**run_metrics, **metrics.class_report(test.labels, outputs["class_id"])}
  files.write_json_atomic(Path(model_dir) / "metrics.json", run_metrics)
  return pictures
