"""The TFLite report: how each variant scored against the Keras model.

Written as `tflite_report.json` and as Markdown tables (`tflite_report.md`, also printed by
kmnist-train), one for the raw-tensor files and one for the image-classifier bundles (with their
accuracy through MediaPipe), so a phone developer can pick a file by size, accuracy and speed.
"""

import importlib.metadata
import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from kmnist.data.splits import Datasets
from kmnist.export import bundle, formats, tflite
from kmnist.models import metrics

JSON_NAME, MARKDOWN_NAME = "tflite_report.json", "tflite_report.md"
LATENCY_INVOKES = 1000


def new_report(
  tfl_dir: Path, sm_dir: Path, datasets: Datasets, reference_logits: np.ndarray, calibration=None
) -> dict:
  """The report's header, before any variant's row."""
  return {
    "directory": str(tfl_dir),
    "saved_model": str(sm_dir),
    "test_examples": len(datasets.test),
    "keras_test_accuracy": metrics.accuracy(reference_logits, datasets.test.labels),
    "int8_calibration_examples": 0 if calibration is None else len(calibration),
    "latency_invokes": LATENCY_INVOKES,
    "latency": "median wall time of interpreter.invoke() on one test image, 1 thread, input set "
    "once",
    "versions": {
      "tensorflow": tf.__version__,
      "ai_edge_litert": importlib.metadata.version("ai-edge-litert"),
      "mediapipe": installed_version("mediapipe"),
    },
    "variants": [],
  }


def installed_version(distribution: str) -> str | None:
  try:
    return importlib.metadata.version(distribution)
  except importlib.metadata.PackageNotFoundError:
    return None


def variant_row(variant: str, model_bytes: bytes, scores: dict, test_image: np.ndarray) -> dict:
  """One variant's figures: its file, size, scores, latency and tensor contract."""
  image = np.asarray(test_image, np.uint8)[None]
  if variant in formats.CLASSIFIER_VARIANTS:
    image = bundle.model_input(model_bytes, image)
  return {
    "variant": variant,
    "file": formats.tflite_filename(variant),
    "size_bytes": len(model_bytes),
    **scores,
    "invoke_latency_us": tflite.median_invoke_us(model_bytes, image, LATENCY_INVOKES),
    "tensors": tensor_contract(model_bytes),
  }


def tensor_contract(model_bytes: bytes) -> dict:
  """dtype and quantization (real = scale * (q - zero_point)) of each signature tensor."""
  details = {"image": tflite.input_details(model_bytes), **tflite.output_details(model_bytes)}
  contract = {}
  for name, d in details.items():
    scale, zero_point = d["quantization"]
    contract[name] = {
      "dtype": np.dtype(d["dtype"]).name,
      "quantization": {"scale": float(scale), "zero_point": int(zero_point)} if scale else None,
    }
  return contract


def markdown(report: dict) -> str:
  """One row per variant, raw files and bundles in a table each; a variant that failed shows its
  error instead of figures."""
  raw = [row for row in report["variants"] if row["variant"] in formats.RAW_VARIANTS]
  bundles = [row for row in report["variants"] if row["variant"] in formats.CLASSIFIER_VARIANTS]
  latency = f"invoke latency (median of {report['latency_invokes']:,})"
  lines = [
    f"TFLite models in {report['directory']}, scored on the {report['test_examples']:,} test "
    f"images (Keras model: test accuracy {report['keras_test_accuracy']:.4f}):",
  ]
  if raw:
    lines += [
      "",
      "| variant | file | size | test accuracy | argmax agreement with Keras | max \\|Δ logits\\| "
      f"| {latency} |",
      "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [_row(row, 4) or _raw_row(row) for row in raw]
  if bundles:
    lines += [
      "",
      "Image-classifier bundles for MediaPipe Tasks (RGB picture [1, 28, 28, 3] in, probabilities "
      "out, TFLite metadata and labels.txt inside):",
      "",
      "| variant | file | size | test accuracy (LiteRT) | through MediaPipe's ImageClassifier | "
      f"argmax agreement with Keras | max \\|Δ probabilities\\| | {latency} |",
      "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [_row(row, 5) or _bundle_row(row) for row in bundles]
    if any(row.get("mediapipe", 0) is None for row in bundles):
      lines += ["", NOT_MEASURED]
  return "\n".join(lines) + "\n"


NOT_MEASURED = (
  "Through MediaPipe: not measured (LiteRT's figures are the check). To get it, run the same "
  "kmnist-train command again with --mediapipe_check (needs `pip install 'kmnist[mobile]'`): it "
  "exports the trained model again, without training, and scores each bundle with MediaPipe too."
)


def _row(row: dict, empty_cells: int) -> str | None:
  if "error" in row:
    return (
      f"| {row['variant']} | not written |"
      + " |" * empty_cells
      + f" failed: {_cell(row['error'])} |"
    )
  return None


def _raw_row(row: dict) -> str:
  return (
    f"| {row['variant']} | {row['file']} | {row['size_bytes']:,} B | {row['test_accuracy']:.4f} "
    f"| {row['argmax_agreement']:.2%} | {row['max_abs_logit_diff']:.2g} | "
    f"{row['invoke_latency_us']:.1f} µs |"
  )


def _bundle_row(row: dict) -> str:
  through = row["mediapipe"]
  mediapipe = (
    f"{through['test_accuracy']:.4f} ({through['classify_us']:.0f} µs per picture)"
    if through
    else "not measured (below)"
  )
  return (
    f"| {row['variant']} | {row['file']} | {row['size_bytes']:,} B | {row['test_accuracy']:.4f} "
    f"| {mediapipe} | {row['argmax_agreement']:.2%} | {row['max_abs_probability_diff']:.2g} | "
    f"{row['invoke_latency_us']:.1f} µs |"
  )


def _cell(text: str) -> str:
  return text.replace("|", "\\|").replace("\n", " ")


def write(directory, report: dict) -> None:
  """Writes both files into `directory` (the export's temporary version directory)."""
  directory = Path(directory)
  (directory / JSON_NAME).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
  (directory / MARKDOWN_NAME).write_text(markdown(report))
