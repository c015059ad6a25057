"""kmnist-predict: classify digit pictures (PNG) or arrays (.npy) with a kmnist SavedModel or
.tflite model.

    kmnist-predict digit.png more/*.png              # the reference export shipped in the package
    kmnist-predict --model=exported/saved_model/3 digits.npy
    kmnist-predict --model=exported/tflite/3/kmnist_float.tflite --json digit.png
    kmnist-predict --model=exported/tflite/3/kmnist_int8_classifier.tflite digit.png

With --json the document also says what the model is (its export's record, kmnist.export.record).
"""

import json
import sys
import textwrap

from absl import app, flags

from kmnist.cli import common
from kmnist.export import record
from kmnist.predict import model_paths


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  flags.DEFINE_string(
    "model",
    None,
    "A SavedModel version directory, a TF Serving base directory (its highest version is used), "
    "or a .tflite file (a raw-tensor file or an image-classifier bundle); default: the reference "
    "export shipped with kmnist.",
    flag_values=fv,
  )
  flags.DEFINE_boolean("json", False, "Print one JSON document instead of text.", flag_values=fv)
  flags.DEFINE_integer(
    "top_k",
    3,
    "How many of the most probable digits to show.",
    lower_bound=1,
    upper_bound=10,
    flag_values=fv,
  )


def main(argv):
  fv = flags.FLAGS
  paths = argv[1:]
  if not paths:
    raise app.UsageError("give at least one .png or .npy file to classify")
  kind, model_path = model_paths.resolve_model(fv.model)
  from kmnist.predict import classify  # TensorFlow loads here, after the quick checks above.

  predictor = classify.load_predictor(kind, model_path)
  errors = []
  if fv.json:  # one document, written as the results come: bounded memory for any input
    about = json.dumps(record.read(model_path.parent if kind == "tflite" else model_path))
    print(f'{{\n  "model": {json.dumps(str(model_path))},\n  "export": {about},', end="")
    print('\n  "predictions": [', end="")
  separator = "\n"
  for what, item in classify.classify(paths, predictor, fv.top_k):
    if what == "error":
      errors.append(item)
      print(f"kmnist-predict: error: {item}", file=sys.stderr)
    elif fv.json:
      print(separator + textwrap.indent(json.dumps(item, indent=2), "    "), end="")
      separator = ",\n"
    else:
      top = ", ".join(f"{t['class_id']}: {t['probability']:.3f}" for t in item["top"])
      print(f"{item['file']}: {item['class_id']}  ({top})")
  if fv.json:
    print(f'\n  ],\n  "errors": {json.dumps(errors)}\n}}')
  return 1 if errors else 0


def cli():
  """Console-script entry point (`kmnist-predict`)."""
  common.run_command("kmnist-predict", define_flags, main)


if __name__ == "__main__":
  cli()
