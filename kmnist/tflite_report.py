"""The TFLite report: how each variant scored against the Keras model, as `tflite_report.json` and as a Markdown
table (`tflite_report.md`, also printed by kmnist-train), so a phone developer can pick a file by size, accuracy
and speed.
"""

import json
from pathlib import Path

JSON_NAME, MARKDOWN_NAME = "tflite_report.json", "tflite_report.md"


def markdown(report: dict) -> str:
  """One row per variant; a variant that failed shows its error instead of figures."""
  lines = [
      f"TFLite models in {report['directory']}, scored on the {report['test_examples']:,} test images "
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
          f"| {row['variant']} | {row['file']} | {row['size_bytes']:,} B | {row['test_accuracy']:.4f} "
          f"| {row['argmax_agreement']:.2%} | {row['max_abs_logit_diff']:.2g} | {row['invoke_latency_us']:.1f} µs |")
  return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
  return text.replace("|", "\\|").replace("\n", " ")


def write(directory, report: dict) -> None:
  """Writes both files into `directory`: the export's temporary version directory, which appears atomically."""
  directory = Path(directory)
  (directory / JSON_NAME).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
  (directory / MARKDOWN_NAME).write_text(markdown(report))
