"""kmnist-predict: classify digit pictures (PNG) or arrays (.npy) with a kmnist SavedModel or
.tflite model.

kmnist-predict digit.png more/*.png                     # with the reference export shipped in the
package kmnist-predict --model=exported/saved_model/3 digits.npy kmnist-predict
--model=exported/tflite/3/kmnist_float.tflite --json digit.png
"""

import json
import sys

from absl import app, flags

from kmnist import model_paths
from kmnist.cli import common


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  flags.DEFINE_string(
      "model",
      None,
      "A SavedModel version directory, a TF Serving base directory (its highest version is used), "
      "or a .tflite file; default: the reference export shipped with kmnist.",
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
  from kmnist import predict  # TensorFlow loads here, after the quick checks above.

  predictor = predict.load_predictor(kind, model_path)
  names, digits, errors = predict.load_inputs(paths)
  results = predict.format_results(names, predictor(digits), fv.top_k) if len(digits) else []
  if fv.json:
    print(
        json.dumps({"model": str(model_path), "predictions": results, "errors": errors}, indent=2)
    )
  else:
    for r in results:
      top = ", ".join(f"{t['class_id']}: {t['probability']:.3f}" for t in r["top"])
      print(f"{r['file']}: {r['class_id']}  ({top})")
  for error in errors:
    print(f"kmnist-predict: error: {error}", file=sys.stderr)
  return 1 if errors else 0


def cli():
  """Console-script entry point (`kmnist-predict`)."""
  common.run_command("kmnist-predict", define_flags, main)


if __name__ == "__main__":
  cli()
