"""kmnist-visualize: draw what an exported model learned, from its SavedModel alone.

    kmnist-visualize                                         # the export named in
    runs/kmnist/metrics.json kmnist-visualize --export=exported/saved_model/3 --model_dir=runs/v3

The weights are read from the SavedModel's variables and the test set is scored through its
`serving_default` signature, so the pictures show the model that is served. weights.png,
confusion_matrix.png and mistakes.png go into --model_dir, the confusion matrix and per-digit
precision and recall into its metrics.json.
"""

import json
import os
import time
from pathlib import Path

from absl import app, flags

from kmnist.cli import common
from kmnist.training.config import TrainConfig
from kmnist.util.errors import KmnistError


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  """All of kmnist-visualize's flags; defaults as kmnist-train's, so a plain call draws the last
  default run."""
  flags.DEFINE_string(
    "export",
    None,
    "SavedModel version directory to draw, e.g. exported/saved_model/1; default: the export "
    "named "
    "in <model_dir>/metrics.json.",
    flag_values=fv,
  )
  flags.DEFINE_string(
    "model_dir",
    TrainConfig().model_dir,
    "Run directory: the pictures go here, the confusion matrix and per-digit precision and "
    "recall "
    "into its metrics.json.",
    flag_values=fv,
  )
  common.define_config_flags(fv, names=("data_dir", "manual_dir"))


def read_run_metrics(metrics_path: Path) -> dict:
  """The run's metrics.json, or {} if there is none yet."""
  if not metrics_path.is_file():
    return {}
  try:
    return json.loads(metrics_path.read_text())
  except json.JSONDecodeError as e:
    raise KmnistError(
      f"{metrics_path} is not valid JSON ({e}); delete it, or pick another --model_dir"
    ) from None


def resolve_export(export, run_metrics: dict, metrics_path: Path) -> Path:
  """The SavedModel to draw: --export, else the run's own; refuses to mix one export's pictures
  into another's run."""
  named = run_metrics.get("saved_model_dir")
  if export is None and named is None:
    raise KmnistError(
      f"{metrics_path} does not exist or names no export; train first (kmnist-train), or pass "
      f"--export=<SavedModel version directory>, e.g. --export=exported/saved_model/1"
    )
  export = Path(export if export is not None else named)
  if not (export / "saved_model.pb").is_file():
    raise KmnistError(
      f"{export} is not a SavedModel version directory (no saved_model.pb in it); pass "
      f"--export=<version directory>, e.g. --export=exported/saved_model/1"
    )
  if named is not None and not (Path(named).exists() and os.path.samefile(named, export)):
    raise KmnistError(
      f"{metrics_path} belongs to the export {named}, not {export}; pass "
      f"--model_dir=<another directory> for this export's pictures"
    )
  return export


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}; kmnist-visualize takes only --flags")
  fv = flags.FLAGS
  start = time.time()
  metrics_path = Path(fv.model_dir) / "metrics.json"
  run_metrics = read_run_metrics(metrics_path)
  export = resolve_export(fv.export, run_metrics, metrics_path)
  # TensorFlow loads here, after the quick checks above.
  from kmnist.data import mnist
  from kmnist.util import console
  from kmnist.visualize import pictures

  test = mnist.load(fv.data_dir, fv.manual_dir, log=print, progress=console.Progress).test
  drawn = pictures.draw_export(fv.model_dir, export, test, run_metrics, log=print)
  print(f"Pictures: {', '.join(str(p) for p in drawn.values())}  ({time.time() - start:.1f} s)")


def cli():
  """Console-script entry point (`kmnist-visualize`)."""
  common.run_command("kmnist-visualize", define_flags, main)


if __name__ == "__main__":
  cli()
