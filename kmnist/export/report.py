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
  """One row per file, raw-tensor files and bundles alike; a variant that failed shows its error
  instead of figures. The bundles' accuracy through MediaPipe gets a column when it was measured
  (--mediapipe_check)."""
  rows = report["variants"]
  mediapipe = any(row.get("mediapipe") for row in rows)
  # The largest difference from Keras is in the logits, or for a bundle in the probabilities.
  latency = f"invoke latency (median of {report['latency_invokes']:,})"
  header = ["file", "size", "test accuracy", "agreement with Keras", "max \\|Δ\\|", latency]
  header += ["through MediaPipe's ImageClassifier"] * mediapipe
  lines = [
    f"TFLite models in {report['directory']}, each scored on the {report['test_examples']:,} test "
    f"images against the Keras model (test accuracy {report['keras_test_accuracy']:.4f}):",
    "",
    f"| {' | '.join(header)} |",
    "| --- |" + " ---: |" * (len(header) - 1),
  ]
  return "\n".join(lines + [_row(row, len(header), mediapipe) for row in rows]) + "\n"


def _row(row: dict, columns: int, mediapipe: bool) -> str:
  if "error" in row:
    name = formats.tflite_filename(row["variant"])
    return f"| {name} | not written |" + " |" * (columns - 3) + f" failed: {_cell(row['error'])} |"
  difference = row.get("max_abs_logit_diff", row.get("max_abs_probability_diff"))
  cells = [
    row["file"],
    f"{row['size_bytes']:,} B",
    f"{row['test_accuracy']:.4f}",
    f"{row['argmax_agreement']:.2%}",
    f"{difference:.2g}",
    f"{row['invoke_latency_us']:.1f} µs",
  ]
  if mediapipe:
    through = row.get("mediapipe")
    cells.append(
      f"{through['test_accuracy']:.4f} ({through['classify_us']:.0f} µs a picture)"
      if through
      else "—"
    )
  return f"| {' | '.join(cells)} |"


def _cell(text: str) -> str:
  return text.replace("|", "\\|").replace("\n", " ")


def write(directory, report: dict) -> None:
  """Writes both files into `directory` (the export's temporary version directory)."""
  directory = Path(directory)
  (directory / JSON_NAME).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
  (directory / MARKDOWN_NAME).write_text(markdown(report))
