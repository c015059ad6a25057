"""kmnist-visualize: draw what an exported model learned, from its SavedModel alone.

    kmnist-visualize                                         # the export named in runs/kmnist/metrics.json
    kmnist-visualize --export=exported/saved_model/3 --model_dir=runs/v3

The weights are read from the SavedModel's variables and the test set is scored through its `serving_default`
signature, so the pictures show the model that is served. weights.png, confusion_matrix.png and mistakes.png go
into --model_dir, the confusion matrix and per-digit precision and recall into its metrics.json.
"""

import json
import os
import time
from pathlib import Path

import numpy as np
from absl import app, flags

from kmnist import command, data
from kmnist.config import TrainConfig
from kmnist.errors import KmnistError

# A SavedModel's variables must reproduce its own logits up to float32 rounding.
MAX_LOGIT_DIFF = 1e-3


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  """All of kmnist-visualize's flags; defaults as kmnist-train's, so a plain call draws the last default run."""
  d = TrainConfig()
  flags.DEFINE_string("export", None,
                      "SavedModel version directory to draw, e.g. exported/saved_model/1; default: the export named "
                      "in <model_dir>/metrics.json.", flag_values=fv)
  flags.DEFINE_string("model_dir", d.model_dir,
                      "Run directory: the pictures go here, the confusion matrix and per-digit precision and recall "
                      "into its metrics.json.", flag_values=fv)
  command.define_data_flags(fv)


def read_run_metrics(metrics_path: Path) -> dict:
  """The run's metrics.json, or {} if there is none yet."""
  if not metrics_path.is_file():
    return {}
  try:
    return json.loads(metrics_path.read_text())
  except json.JSONDecodeError as e:
    raise KmnistError(f"{metrics_path} is not valid JSON ({e}); delete it, or pick another --model_dir") from None


def resolve_export(export, run_metrics: dict, metrics_path: Path) -> Path:
  """The SavedModel to draw: --export, else the run's own; refuses to mix one export's pictures into another's run."""
  named = run_metrics.get("saved_model_dir")
  if export is None and named is None:
    raise KmnistError(f"{metrics_path} does not exist or names no export; train first (kmnist-train), or pass "
                      f"--export=<SavedModel version directory>, e.g. --export=exported/saved_model/1")
  export = Path(export if export is not None else named)
  if not (export / "saved_model.pb").is_file():
    raise KmnistError(f"{export} is not a SavedModel version directory (no saved_model.pb in it); pass "
                      f"--export=<version directory>, e.g. --export=exported/saved_model/1")
  if named is not None and not (Path(named).exists() and os.path.samefile(named, export)):
    raise KmnistError(f"{metrics_path} belongs to the export {named}, not {export}; pass "
                      f"--model_dir=<another directory> for this export's pictures")
  return export


def read_dense_weights(saved_model_dir) -> tuple[np.ndarray, np.ndarray]:
  """The softmax regression's kernel [784, 10] and bias [10], read from the SavedModel's variables."""
  import tensorflow as tf

  variables = getattr(tf.saved_model.load(str(saved_model_dir)), "variables", [])
  shapes = {"kernel": (np.prod(data.IMAGE_SHAPE), data.NUM_CLASSES), "bias": (data.NUM_CLASSES,)}
  found = {name: [v.numpy() for v in variables if tuple(v.shape) == shape] for name, shape in shapes.items()}
  if any(len(arrays) != 1 for arrays in found.values()):
    raise KmnistError(
        f"{saved_model_dir} is not a kmnist softmax regression: expected one 784x10 kernel and one bias of 10 "
        f"among its variables, found {[tuple(v.shape) for v in variables]}; pass a SavedModel written by kmnist-train")
  return found["kernel"][0], found["bias"][0]


def check_weights_explain_logits(kernel, bias, images_uint8: np.ndarray, logits: np.ndarray, export) -> None:
  """The pictures draw these weights, so they must be the ones the served model computes with."""
  expected = images_uint8.reshape(len(images_uint8), -1).astype(np.float64) / 255.0 @ kernel + bias
  max_diff = float(np.max(np.abs(expected - logits)))
  if max_diff > MAX_LOGIT_DIFF:
    raise KmnistError(f"{export}'s variables do not compute its served logits (max |difference| {max_diff:.3g}); "
                      f"it is not a kmnist softmax regression: pass a SavedModel written by kmnist-train")


def run(model_dir, export=None, data_dir=data.DEFAULT_DATA_DIR, manual_dir=None,
        test_override: data.Split | None = None) -> dict[str, Path]:
  """Draws one export's pictures into `model_dir` and adds its class report to metrics.json. Returns {name: path}."""
  metrics_path = Path(model_dir) / "metrics.json"
  run_metrics = read_run_metrics(metrics_path)
  export = resolve_export(export, run_metrics, metrics_path)
  from kmnist import files, saved_model, visualize  # TensorFlow loads here, after the quick checks above.

  kernel, bias = read_dense_weights(export)
  test = test_override or data.load(data_dir, manual_dir).test
  outputs = saved_model.predict_saved_model(export, test.images)
  check_weights_explain_logits(kernel, bias, test.images, outputs["logits"], export)
  pictures = visualize.write_pictures(model_dir, kernel, test, outputs["logits"])
  if not run_metrics:  # A directory of its own for this export: say what the pictures are of.
    run_metrics = {"saved_model_dir": str(export), "test_examples": len(test),
                   "test_accuracy": float(np.mean(outputs["class_id"] == test.labels))}
  run_metrics.update(visualize.class_report(test.labels, outputs["class_id"]))
  files.write_json_atomic(metrics_path, run_metrics)
  return pictures


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}; kmnist-visualize takes only --flags")
  fv = flags.FLAGS
  start = time.time()
  pictures = run(fv.model_dir, fv.export, fv.data_dir, fv.manual_dir)
  print(f"Pictures: {', '.join(str(p) for p in pictures.values())}  ({time.time() - start:.1f} s)")


def cli():
  """Console-script entry point (`kmnist-visualize`)."""
  command.run_command("kmnist-visualize", define_flags, main)


if __name__ == "__main__":
  cli()
