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
    "TFLite models in exported/tflite/4, each scored on the 10,000 test images against the Keras "
    "model (test accuracy 0.9175):"
  )
  header, rule, *rows = lines[2:]
  assert header.count("|") - header.count("\\|") == rule.count("|") == rows[0].count("|") == 7
  assert "MediaPipe" not in header  # not measured: no column
  assert rows == [
    "| kmnist_float.tflite | 34,336 B | 0.9175 | 100.00% | 1.9e-06 | 2.3 µs |",
    "| kmnist_int8.tflite | not written | | | | failed: RuntimeError: op \\| not supported |",
  ]


def test_a_bundle_measured_through_mediapipe_gets_its_column():
  bundle = {
    "variant": "int8_classifier",
    "file": "kmnist_int8_classifier.tflite",
    "size_bytes": 11370,
    "test_accuracy": 0.9173,
    "argmax_agreement": 0.9953,
    "max_abs_probability_diff": 0.043,
    "invoke_latency_us": 3.3,
    "mediapipe": {"test_accuracy": 0.9173, "classify_us": 149.2},
  }
  *_, raw, failed, measured = tflite_report.markdown(
    {**REPORT, "variants": [*REPORT["variants"], bundle]}
  ).splitlines()
  assert raw.endswith("| 2.3 µs | — |") and failed.endswith("not supported |")
  assert measured == (
    "| kmnist_int8_classifier.tflite | 11,370 B | 0.9173 | 99.53% | 0.043 | 3.3 µs | "
    "0.9173 (149 µs a picture) |"
  )


def test_write_puts_json_and_markdown_side_by_side(tmp_path):
  tflite_report.write(tmp_path, REPORT)
  assert json.loads((tmp_path / "tflite_report.json").read_text()) == REPORT
  assert (tmp_path / "tflite_report.md").read_text() == tflite_report.markdown(REPORT)
