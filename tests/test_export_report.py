"""The TFLite report: one Markdown row per variant (failures named), and the JSON beside it."""

import json

from kmnist.export import report as tflite_report

REPORT = {
  "directory": "exported/tflite/4",
  "test_examples": 10000,
  "keras_test_accuracy": 0.9175,
  "latency_invokes": 1000,
  "variants": [
    {
      "variant": "float",
      "file": "kmnist_float.tflite",
      "size_bytes": 34336,
      "test_accuracy": 0.9175,
      "argmax_agreement": 1.0,
      "max_abs_logit_diff": 1.9e-06,
      "invoke_latency_us": 2.27,
    },
    {"variant": "int8", "error": "RuntimeError: op | not supported"},
  ],
}


def test_markdown_has_a_row_per_variant_and_names_failures():
  lines = tflite_report.markdown(REPORT).splitlines()
  assert lines[0] == (
    "TFLite models in exported/tflite/4, scored on the 10,000 test images "
    "(Keras model: test accuracy 0.9175):"
  )
  header, rule, *rows = lines[2:]
  assert header.count("|") - header.count("\\|") == rule.count("|") == rows[0].count("|") == 8
  assert rows == [
    "| float | kmnist_float.tflite | 34,336 B | 0.9175 | 100.00% | 1.9e-06 | 2.3 µs |",
    "| int8 | not written | | | | | failed: RuntimeError: op \\| not supported |",
  ]


def test_write_puts_json_and_markdown_side_by_side(tmp_path):
  tflite_report.write(tmp_path, REPORT)
  assert json.loads((tmp_path / "tflite_report.json").read_text()) == REPORT
  assert (tmp_path / "tflite_report.md").read_text() == tflite_report.markdown(REPORT)
