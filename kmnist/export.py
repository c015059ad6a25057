"""The export step: SavedModel for serving, TFLite for phones, each checked against the Keras model before it counts.

Layout under the export base (TF Serving watches `saved_model/`):
    <export_dir>/saved_model/<version>/   SavedModel
    <export_dir>/tflite/<version>/        kmnist_<variant>.tflite, labels.txt, tflite_report.json and .md

Each version directory appears whole or not at all (written under a hidden name, then renamed). A SavedModel that
fails its check is removed and nothing else is written. A TFLite variant that fails to convert or fails its check
is left out, but not the rest: `tflite/<version>/` still appears with the variants that passed, `labels.txt` and
the report (which names the failure), the SavedModel stays, and then the export raises, naming variant and cause.
"""

import dataclasses
import importlib.metadata
import shutil
from pathlib import Path

import numpy as np

from kmnist import files, layout, saved_model, tflite, tflite_report
from kmnist.data import NUM_CLASSES, Datasets, Split
from kmnist.errors import KmnistError

# A correct export computes the Keras model's function, up to float rounding (saved_model, float) or quantization
# (dynamic, int8). Logit differences count relative to the largest |Keras logit| (at least 1), because
# quantization errors grow with the logits' range. Quantized models disagree on a few near-tie images: dynamic
# 99.90-99.98 % agreement over seeds 0-14, so its bar is 99.8 %, not the 99.9 % the default run is held to in
# the tests, lest a correct model be refused over one image. Measured figures: BUILD_NOTES.md, "TFLite variants".
MIN_AGREEMENT = {"saved_model": 1.0, "float": 0.9999, "dynamic": 0.998, "int8": 0.99}
MAX_LOGIT_DIFF = {"saved_model": 1e-5, "float": 1e-4, "dynamic": 0.01, "int8": 0.02}
# How far test accuracy may fall below the Keras model's: the criterion for int8 (0.3 points); for the
# others it follows from the agreement.
MAX_ACCURACY_DROP = {"saved_model": 0.0, "float": 1e-4, "dynamic": 1e-3, "int8": 3e-3}
LATENCY_INVOKES = 1000
LABELS_FILENAME = "labels.txt"


@dataclasses.dataclass(frozen=True)
class Exports:
  saved_model_dir: Path
  tflite_paths: dict  # variant -> path of its .tflite
  tflite_report: dict  # as in tflite_report.json


def keras_logits(model, images_uint8: np.ndarray) -> np.ndarray:
  return model.predict(images_uint8.astype(np.float32) / 255.0, batch_size=10_000, verbose=0)


def check_outputs(name: str, outputs: dict, reference_logits: np.ndarray, labels: np.ndarray) -> dict:
  """Scores an export's outputs against the Keras logits and the labels; raises if they disagree beyond rounding
  or quantization. Returns the figures: test accuracy, argmax agreement, max |logit difference|."""
  reference_accuracy = float(np.mean(reference_logits.argmax(-1) == labels))
  accuracy = float(np.mean(outputs["class_id"] == labels))
  agreement = float(np.mean(outputs["class_id"] == reference_logits.argmax(-1)))
  max_diff = float(np.max(np.abs(outputs["logits"] - reference_logits)))
  max_allowed = MAX_LOGIT_DIFF[name] * max(1.0, float(np.max(np.abs(reference_logits))))
  min_accuracy = reference_accuracy - MAX_ACCURACY_DROP[name]
  # Written so that NaN fails every comparison; 1e-9 absorbs the rounding of the subtraction above.
  if not (agreement >= MIN_AGREEMENT[name] and max_diff <= max_allowed and accuracy >= min_accuracy - 1e-9):
    raise KmnistError(
        f"the {name} export does not reproduce the Keras model (argmax agreement {agreement:.2%}, needs "
        f"{MIN_AGREEMENT[name]:.2%}; max |logit difference| {max_diff:.3g}, allows {max_allowed:.3g}; test accuracy "
        f"{accuracy:.4f}, needs {min_accuracy:.4f}); it was not kept. This is a bug in kmnist: please report it")
  return {"test_accuracy": accuracy, "argmax_agreement": agreement, "max_abs_logit_diff": max_diff}


def one_digit_per_class(split: Split) -> np.ndarray:
  """A handful of real digits (the first of each class present) for TF Serving's warmup requests."""
  firsts = [np.flatnonzero(split.labels == c)[0] for c in np.unique(split.labels)]
  return split.images[firsts]


def export_and_verify(model, datasets: Datasets, export_dir, version: int | None = None,
                      tflite_variants=tflite.VARIANTS, chief: bool = True,
                      reference_logits: np.ndarray | None = None) -> Exports | None:
  """Writes the SavedModel and the TFLite models, scored on the test images (int8 calibrated on the training
  images). Raises KmnistError if any export fails, after keeping what passed (see the module docstring).

  Under a multi-worker strategy every worker calls this: the Keras predictions and the SavedModel write are
  collective operations. A non-chief worker (`chief=False`) stops after them and gets None; only the chief checks
  and converts.
  """
  export_dir = Path(export_dir)
  test = datasets.test
  # The Keras model's own test logits, the yardstick of every export (computed here unless the caller has them).
  reference = keras_logits(model, test.images) if reference_logits is None else reference_logits
  sm_base, tfl_base = export_dir / "saved_model", export_dir / "tflite"
  if version is None:
    # One version number names the pair, so the next free number is free in both places.
    version = max(layout.next_version(sm_base), layout.next_version(tfl_base))
  tfl_dir = tfl_base / str(version)
  if tfl_dir.exists():
    raise KmnistError(f"export version {tfl_dir} already exists; pick another --export_version or leave it unset")
  sm_dir = saved_model.export_saved_model(model, sm_base, version, warmup_images=one_digit_per_class(test))
  if not chief:
    return None
  try:
    check_outputs("saved_model", saved_model.predict_saved_model(sm_dir, test.images), reference, test.labels)
  except BaseException:
    shutil.rmtree(sm_dir, ignore_errors=True)  # An export that failed its check must not be served.
    raise

  report = new_report(tfl_dir, sm_dir, datasets, reference)
  with files.atomic_directory(tfl_dir) as tmp:
    for variant in tflite_variants:
      report["variants"].append(export_variant(variant, tmp, model, sm_dir, datasets, reference))
    (tmp / LABELS_FILENAME).write_text("".join(f"{label}\n" for label in range(NUM_CLASSES)))
    tflite_report.write(tmp, report)

  failed = [row for row in report["variants"] if "error" in row]
  if failed:
    kept = ", ".join(row["file"] for row in report["variants"] if "file" in row) or "no model"
    raise KmnistError(
        "TFLite export failed: " + "; ".join(f"{row['variant']}: {row['error']}" for row in failed)
        + f". Kept the SavedModel {sm_dir} and {kept} in {tfl_dir} (see {tflite_report.MARKDOWN_NAME} there)")
  paths = {row["variant"]: tfl_dir / row["file"] for row in report["variants"]}
  return Exports(saved_model_dir=sm_dir, tflite_paths=paths, tflite_report=report)


def new_report(tfl_dir: Path, sm_dir: Path, datasets: Datasets, reference: np.ndarray) -> dict:
  import tensorflow as tf

  return {
      "directory": str(tfl_dir),
      "saved_model": str(sm_dir),
      "test_examples": len(datasets.test),
      "keras_test_accuracy": float(np.mean(reference.argmax(-1) == datasets.test.labels)),
      "int8_calibration_examples": len(datasets.train),
      "latency_invokes": LATENCY_INVOKES,
      "latency": "median wall time of interpreter.invoke() on one test image, 1 thread, input set once",
      "versions": {"tensorflow": tf.__version__, "ai_edge_litert": importlib.metadata.version("ai-edge-litert")},
      "variants": [],
  }


def export_variant(variant: str, directory: Path, model, sm_dir, datasets: Datasets, reference) -> dict:
  """Converts, checks and writes one TFLite variant into `directory`. Returns its report row: the figures, or
  the error (and no file) if it failed."""
  try:
    model_bytes = tflite.convert(variant, sm_dir, model, datasets.train.images)
    outputs = tflite.predict_tflite(model_bytes, datasets.test.images)
    scores = check_outputs(variant, outputs, reference, datasets.test.labels)
  except Exception as e:  # This variant only; Ctrl-C (not an Exception) still stops the whole export.
    return {"variant": variant, "error": one_line(e)}
  (directory / tflite.model_filename(variant)).write_bytes(model_bytes)
  return {
      "variant": variant,
      "file": tflite.model_filename(variant),
      "size_bytes": len(model_bytes),
      **scores,
      "invoke_latency_us": tflite.invoke_latency_us(model_bytes, datasets.test.images[0], LATENCY_INVOKES),
      "tensors": tensor_contract(model_bytes),
  }


def tensor_contract(model_bytes: bytes) -> dict:
  """dtype and quantization (real = scale * (q - zero_point); none for float) of each signature tensor."""
  details = {"image": tflite.input_details(model_bytes), **tflite.output_details(model_bytes)}
  contract = {}
  for name, d in details.items():
    scale, zero_point = d["quantization"]
    contract[name] = {"dtype": np.dtype(d["dtype"]).name,
                      "quantization": {"scale": float(scale), "zero_point": int(zero_point)} if scale else None}
  return contract


def one_line(error: Exception) -> str:
  """`Type: first line of the message`: converter errors run to pages of MLIR."""
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  text = f"{type(error).__name__}: {lines[0] if lines else 'no message'}"
  return text if len(text) <= 300 else text[:297] + "..."
