"""kmnist-predict: classify digit pictures (PNG) or arrays (.npy) with a kmnist SavedModel or .tflite model.

    kmnist-predict digit.png more/*.png                     # with the reference export shipped in exported/
    kmnist-predict --model=exported/saved_model/3 digits.npy
    kmnist-predict --model=exported/tflite/3/kmnist_float.tflite --json digit.png
"""

import json
import sys
from pathlib import Path

import numpy as np
from absl import app, flags

from kmnist import layout
from kmnist.errors import KmnistError

# The reference export committed with the source, so prediction works right after install, before any training.
REFERENCE_EXPORT = Path(__file__).resolve().parent.parent / "exported" / "reference"
DEFAULT_MODEL = REFERENCE_EXPORT / "saved_model" / "1"


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  flags.DEFINE_string("model", str(DEFAULT_MODEL),
                      "A SavedModel version directory, a TF Serving base directory (its highest version is used), "
                      "or a .tflite file.", flag_values=fv)
  flags.DEFINE_boolean("json", False, "Print one JSON document instead of text.", flag_values=fv)
  flags.DEFINE_integer("top_k", 3, "How many of the most probable digits to show.", lower_bound=1, upper_bound=10,
                       flag_values=fv)


def resolve_model(model) -> tuple[str, Path]:
  """Returns ("saved_model" | "tflite", path), or raises naming what was expected."""
  path = Path(model)
  if path.is_file() and path.suffix == ".tflite":
    with open(path, "rb") as f:
      header = f.read(8)
    if header[4:8] != b"TFL3":  # the FlatBuffer identifier of every TFLite model
      raise KmnistError(f"--model={model} is not a TFLite model (no TFL3 identifier); give a .tflite from kmnist-train")
    return "tflite", path
  if path.is_dir():
    if layout.is_saved_model(path):
      return "saved_model", path
    versions = layout.existing_versions(path)
    if versions and layout.is_saved_model(path / str(versions[-1])):
      return "saved_model", path / str(versions[-1])
  raise KmnistError(f"--model={model} is not a SavedModel directory (no saved_model.pb) nor a .tflite file; "
                    f"give e.g. exported/saved_model/1 or exported/tflite/1/kmnist_float.tflite")


def load_inputs(paths) -> tuple[list, np.ndarray, list]:
  """Reads every file; returns (labels like 'a.npy[3]', uint8 images [N, 28, 28], one-line errors)."""
  from kmnist import images

  names, digits, errors = [], [], []
  for path in paths:
    try:
      if str(path).endswith(".npy"):
        array = images.load_npy(path)
        names += [f"{path}[{i}]" for i in range(len(array))] if len(array) > 1 else [str(path)]
        digits += list(array)
      else:
        digits.append(images.load_png(path))
        names.append(str(path))
    except KmnistError as e:
      errors.append(str(e))
  return names, np.asarray(digits, np.uint8).reshape((-1, 28, 28)), errors


def load_predictor(kind: str, model_path: Path):
  """Loads the model once; returns a function uint8 [N, 28, 28] -> outputs. Raises KmnistError if it won't load."""
  try:
    if kind == "tflite":
      from ai_edge_litert.interpreter import Interpreter

      from kmnist import tflite
      Interpreter(model_path=str(model_path))  # fails here, not per file, on a broken model
      return lambda digits: tflite.predict_tflite(model_path, digits)
    from kmnist import saved_model
    serve = saved_model.load_signature(model_path)
  except Exception as e:  # Whatever TF or LiteRT raise on a broken file, the user needs the file named.
    reason = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
    raise KmnistError(f"--model={model_path} could not be loaded as a {kind} ({reason}); "
                      f"give an export written by kmnist-train") from None
  import tensorflow as tf
  return lambda digits: {k: v.numpy() for k, v in serve(image=tf.constant(digits)).items()}


def format_results(names, outputs, top_k: int) -> list[dict]:
  results = []
  for name, probabilities in zip(names, outputs["probabilities"]):
    top = np.argsort(-probabilities)[:top_k]
    results.append({"file": name, "class_id": int(top[0]),
                    "top": [{"class_id": int(c), "probability": round(float(probabilities[c]), 4)} for c in top]})
  return results


def main(argv):
  fv = flags.FLAGS
  paths = argv[1:]
  if not paths:
    raise app.UsageError("give at least one .png or .npy file to classify")
  kind, model_path = resolve_model(fv.model)
  predictor = load_predictor(kind, model_path)
  names, digits, errors = load_inputs(paths)
  results = format_results(names, predictor(digits), fv.top_k) if len(digits) else []
  if fv.json:
    print(json.dumps({"model": str(model_path), "predictions": results, "errors": errors}, indent=2))
  else:
    for r in results:
      top = ", ".join(f"{t['class_id']}: {t['probability']:.3f}" for t in r["top"])
      print(f"{r['file']}: {r['class_id']}  ({top})")
  for error in errors:
    print(f"kmnist-predict: error: {error}", file=sys.stderr)
  return 1 if errors else 0


def cli():
  """Console-script entry point (`kmnist-predict`)."""
  from kmnist import command
  command.run_command("kmnist-predict", define_flags, main)


if __name__ == "__main__":
  cli()
