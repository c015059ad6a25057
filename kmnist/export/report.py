"""The TFLite report: how each variant scored against the Keras model.

Written as `tflite_report.json` and as a Markdown table (`tflite_report.md`, also printed by
kmnist-train), so a phone developer can pick a file by size, accuracy and speed.
"""

import importlib.metadata
import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from kmnist.data.splits import Datasets
from kmnist.export import formats, tflite
from kmnist.models import metrics

JSON_NAME, MARKDOWN_NAME = "tflite_report.json", "tflite_report.md"
LATENCY_INVOKES = 1000


def new_report(
  tfl_dir: Path, sm_dir: Path, datasets: Datasets, reference_logits: np.ndarray
) -> dict:
  """The report's header, before any variant's row."""
  return {
    "directory": str(tfl_dir),
    "saved_model": str(sm_dir),
    "test_examples": len(datasets.test),
    "keras_test_accuracy": metrics.accuracy(reference_logits, datasets.test.labels),
    "int8_calibration_examples": len(datasets.train),
    "latency_invokes": LATENCY_INVOKES,
    "latency": "median wall time of interpreter.invoke() on one test image, 1 thread, input set "
    "once",
    "versions": {
      "tensorflow": tf.__version__,
      "ai_edge_litert": importlib.metadata.version("ai-edge-litert"),
    },
    "variants": [],
  }


def variant_row(variant: str, model_bytes: bytes, scores: dict, test_image: np.ndarray) -> dict:
  """One variant's figures: its file, size, scores, latency and tensor contract."""
  return {
    "variant": variant,
    "file": formats.tflite_filename(variant),
    "size_bytes": len(model_bytes),
    **scores,
    "invoke_latency_us": tflite.invoke_latency_us(model_bytes, test_image, LATENCY_INVOKES),
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
  """One row per variant; a variant that failed shows its error instead of figures."""
  lines = [
    f"TFLite models in {report['directory']}, scored on the {report['test_examples']:,} test "
    "images "
    f"(Keras model: test accuracy {report['keras_test_accuracy']:.4f}):",
    "",
    "| variant | file | size | test accuracy | argmax agreement with Keras | max \\|Δ logits\\| "
    f"| invoke latency (median of {report['latency_invokes']:,}) |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
  ]
  for row in report["variants"]:
    if "error" in row:
      lines.append(f"| {row['variant']} | not written | | | | | failed: {_cell(row['error'])} |")
    else:
      lines.append(
        f"| {row['variant']} | {row['file']} | {row['size_bytes']:,} B | "
        f"{row['test_accuracy']:.4f} "
        f"| {row['argmax_agreement']:.2%} | {row['max_abs_logit_diff']:.2g} | "
        f"{row['invoke_latency_us']:.1f} µs |"
      )
  return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
  return text.replace("|", "\\|").replace("\n", " ")


def write(directory, report: dict) -> None:
  """Writes both files into `directory` (the export's temporary version directory)."""
  directory = Path(directory)
  (directory / JSON_NAME).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
  (directory / MARKDOWN_NAME).write_text(markdown(report))
