"""The bundles where phones run them: MediaPipe's own metadata reader and ImageClassifier take
them as they are (and refuse kmnist's raw-tensor files, which is why the bundles exist)."""

from pathlib import Path

import numpy as np
import pytest

from kmnist.export import bundle, saved_model, tflite

from bundle_checks import DIGITS, assert_runs_in_mediapipe_as_in_litert, require_mediapipe


@pytest.fixture(scope="module", autouse=True)
def mediapipe_installed():
  require_mediapipe()


@pytest.mark.parametrize("variant", ["float_classifier", "int8_classifier"])
def test_imageclassifier_runs_each_bundle_as_litert_does(
  classifier_bundles, synthetic_datasets, variant
):
  test = synthetic_datasets.test
  scores = assert_runs_in_mediapipe_as_in_litert(
    classifier_bundles[variant], test.images, test.labels
  )
  print(f"{variant}: MediaPipe {scores['mediapipe']:.4f}, LiteRT {scores['litert']:.4f}")
  assert scores["mediapipe"] > 0.5  # the synthetic digits are learnable


def test_mediapipes_reader_shows_the_metadata(classifier_bundles):
  from kmnist.export import mediapipe_check

  read = mediapipe_check.read_metadata(classifier_bundles["int8_classifier"])
  assert read["packed_files"] == ["labels.txt"] and read["labels"] == DIGITS
  shown = read["metadata"]
  assert shown["name"] == "kmnist softmax digit classifier (int8)"
  assert shown["version"] == "kmnist 0.1.0, export 1" and shown["author"] == "kmnist"
  assert shown["min_parser_version"] == "1.0.0"
  (image,) = shown["subgraph_metadata"][0]["input_tensor_metadata"]
  assert image["process_units"][0]["options"] == {"mean": [0.0], "std": [255.0]}
  assert image["content"]["content_properties"]["color_space"] == "RGB"


def test_mediapipe_refuses_the_raw_tensor_files(trained_model, synthetic_datasets, tmp_path):
  from kmnist.export import mediapipe_check

  sm_dir = saved_model.export_saved_model(trained_model, tmp_path / "saved_model")
  raw = tflite.convert("float", sm_dir, trained_model, None)
  with pytest.raises(Exception, match="Only 4D tensors in BHWD layout are supported"):
    mediapipe_check.classify(raw, np.zeros((1, 28, 28), np.uint8))


def test_the_guides_python_snippet_classifies_with_the_bundle(
  classifier_bundles, synthetic_datasets, tmp_path, monkeypatch, capsys
):
  guide = (Path(__file__).resolve().parents[1] / "docs" / "guides" / "tflite.md").read_text()
  section = guide.split("## The image-classifier bundles, with MediaPipe Tasks")[1].split("\n## ")[
    0
  ]
  snippet = section.split("```python\n")[1].split("```")[0]
  assert "np.zeros((28, 28, 3), np.uint8)" in snippet
  model_bytes = classifier_bundles["int8_classifier"]
  path = tmp_path / "exported" / "tflite" / "1" / "kmnist_int8_classifier.tflite"
  path.parent.mkdir(parents=True)
  path.write_bytes(model_bytes)
  # The digit the model is surest of: uint8 probabilities may tie on a doubtful one, and then the
  # order of the tied categories is MediaPipe's.
  expected = bundle.predict_bundle(model_bytes, synthetic_datasets.test.images[:50])
  top_two = np.sort(expected["probabilities"], axis=-1)[:, -2:]
  surest = int(np.argmax(top_two[:, 1] - top_two[:, 0]))
  digit = bundle.rgb(synthetic_datasets.test.images[surest])
  monkeypatch.chdir(tmp_path)
  exec(snippet.replace("np.zeros((28, 28, 3), np.uint8)", "digit"), {"digit": digit})
  _, name, _, probability = capsys.readouterr().out.split()
  assert name == str(expected["class_id"][surest])
  assert float(probability) == pytest.approx(expected["probabilities"][surest].max(), abs=1e-3)
