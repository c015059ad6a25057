"""The image-classifier bundles: the tensor contract MediaPipe's ImageClassifier takes, the Keras
model's function on RGB pictures, the gray taken inside as Pillow takes it, reproducible bytes."""

import numpy as np
import pytest
from PIL import Image

from kmnist.export import bundle, saved_model, tflite
from kmnist.models import metrics

CONTRACT = {
  # variant: (input dtype, input quantization, output dtype, output quantization)
  "float_classifier": (np.float32, (0.0, 0), np.float32, (0.0, 0)),
  "int8_classifier": (np.uint8, (1 / 255, 0), np.uint8, (1 / 256, 0)),
}


@pytest.mark.parametrize("variant", CONTRACT)
def test_one_rgb_picture_in_probabilities_out(classifier_bundles, variant):
  runner = tflite.interpreter(classifier_bundles[variant]).get_signature_runner("serving_default")
  ((name, image),) = runner.get_input_details().items()
  ((output, probabilities),) = runner.get_output_details().items()  # the only output
  in_dtype, in_quantization, out_dtype, out_quantization = CONTRACT[variant]
  assert (name, image["dtype"], list(image["shape_signature"])) == (
    "image",
    in_dtype,
    [1, 28, 28, 3],
  )
  assert (output, probabilities["dtype"], list(probabilities["shape"])) == (
    "probabilities",
    out_dtype,
    [1, 10],
  )
  assert image["quantization"] == pytest.approx(in_quantization, rel=1e-6)
  assert probabilities["quantization"] == pytest.approx(out_quantization, rel=1e-6)
  assert bundle.is_bundle(classifier_bundles[variant])
  # Named so also for a runtime that reads the tensors without the signature.
  plain = tflite.interpreter(classifier_bundles[variant])
  assert [d["name"] for d in plain.get_input_details()] == ["image"]
  assert [d["name"] for d in plain.get_output_details()] == ["probabilities"]


def test_bundles_compute_the_keras_models_probabilities(
  classifier_bundles, trained_model, synthetic_datasets
):
  test = synthetic_datasets.test
  keras_probabilities = metrics.softmax(trained_model.predict(test.images / 255.0, verbose=0))
  floats = bundle.predict_bundle(classifier_bundles["float_classifier"], test.images)
  np.testing.assert_allclose(floats["probabilities"], keras_probabilities, atol=1e-5)
  integers = bundle.predict_bundle(classifier_bundles["int8_classifier"], test.images)
  assert np.mean(integers["class_id"] == keras_probabilities.argmax(-1)) >= 0.99
  assert np.abs(integers["probabilities"] - keras_probabilities).max() < 0.1


def test_the_gray_inside_is_pillows_to_within_a_level(
  classifier_bundles, trained_model, mnist_digits
):
  # ITU-R 601's luma as Pillow's convert("L") has it, in steps int8 holds exactly.
  np.testing.assert_allclose(bundle.LUMA, [0.299, 0.587, 0.114], atol=0.0018)
  assert bundle.LUMA.sum() == pytest.approx(1) and (bundle.LUMA * 217).max() == pytest.approx(127)
  # Digits inked in colours on coloured paper: the float bundle sees what Keras sees in Pillow's
  # gray of the same picture, to within one gray level.
  rng = np.random.default_rng(0)
  digits = mnist_digits.images[:20].astype(np.float32) / 255
  ink, paper = rng.integers(0, 256, (2, 20, 1, 1, 3))
  pictures = (digits[..., None] * ink + (1 - digits[..., None]) * paper).round().astype(np.uint8)
  gray = np.stack([np.asarray(Image.fromarray(p).convert("L")) for p in pictures])
  runner = tflite.interpreter(classifier_bundles["float_classifier"]).get_signature_runner()
  got = np.concatenate([runner(image=p[None] / np.float32(255))["probabilities"] for p in pictures])

  def keras(pixels):
    return metrics.softmax(trained_model.predict(pixels / 255.0, verbose=0))

  expected = keras(gray.astype(np.float32))
  one_level = max(np.abs(keras(gray + shift) - expected).max() for shift in (-1.0, 1.0))
  assert np.abs(got - expected).max() <= one_level


def test_the_int8_bundles_quantization_is_checked(trained_model, synthetic_datasets, tmp_path):
  sm_dir = saved_model.export_saved_model(trained_model, tmp_path / "saved_model")
  raw = tflite.convert("int8", sm_dir, trained_model, synthetic_datasets.train.images)
  expected = {"image": bundle.INPUT_QUANTIZATION, "probabilities": bundle.OUTPUT_QUANTIZATION}
  with pytest.raises(RuntimeError, match="probabilities quantization is .* not \\(1/256, 0\\)"):
    # the raw int8 file: probabilities with zero point -128
    tflite.check_quantization(raw, "the int8 bundle", expected)
  assert not bundle.is_bundle(raw)


def test_a_float_bundle_is_the_same_bytes_every_time(trained_model, synthetic_datasets):
  again = [bundle.convert("float_classifier", trained_model, None) for _ in range(2)]
  assert again[0] == again[1]
  written = [bundle.with_metadata(again[0], "float_classifier", None, 7) for _ in range(2)]
  assert written[0] == written[1]
