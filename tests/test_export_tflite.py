"""TFLite conversion: every variant keeps the serving signature and the documented tensor
contract, computes the Keras model's function, and reads as the TFLite guide's snippet says."""

from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from tensorflow.lite.tools import flatbuffer_utils

from kmnist.export import saved_model, tflite
from kmnist.models import registry

OUTPUT_DTYPES = {"float": np.float32, "dynamic": np.float32, "int8": np.int8}


@pytest.fixture(scope="module")
def converted(trained_model, synthetic_datasets, tmp_path_factory) -> dict:
  sm_dir = saved_model.export_saved_model(
    trained_model, tmp_path_factory.mktemp("exported") / "saved_model"
  )
  return {
    v: tflite.convert(v, sm_dir, trained_model, synthetic_datasets.train.images)
    for v in tflite.VARIANTS
  }


@pytest.mark.parametrize("variant", tflite.VARIANTS)
def test_every_variant_keeps_the_serving_signature(converted, variant):
  runner = Interpreter(model_content=converted[variant]).get_signature_runner("serving_default")
  ((name, image),) = runner.get_input_details().items()
  assert (name, image["dtype"], list(image["shape_signature"])) == ("image", np.uint8, [-1, 28, 28])
  outputs = {
    k: (d["dtype"], list(d["shape_signature"])) for k, d in runner.get_output_details().items()
  }
  assert outputs == {
    "class_id": (np.int64, [-1]),
    "probabilities": (OUTPUT_DTYPES[variant], [-1, 10]),
    "logits": (OUTPUT_DTYPES[variant], [-1, 10]),
  }


def test_int8_takes_raw_pixels_whatever_the_calibration_images_span(converted, synthetic_datasets):
  assert synthetic_datasets.train.images.max() < 255  # so the scale below is not simply calibrated
  scale, zero_point = tflite.input_details(converted["int8"])["quantization"]
  assert scale == pytest.approx(1 / 255, rel=1e-6) and zero_point == 0
  # What the docs promise app developers: probability = (q + 128) / 256.
  probabilities = tflite.output_details(converted["int8"])["probabilities"]["quantization"]
  assert probabilities == (1 / 256, -128)


def test_predict_tflite_returns_real_numbers(converted, trained_model, synthetic_datasets):
  images = synthetic_datasets.test.images[:50]
  reference = trained_model.predict(images / 255.0, verbose=0)
  for model_bytes in converted.values():
    outputs = tflite.predict_tflite(model_bytes, images)
    assert outputs["logits"].dtype == outputs["probabilities"].dtype == np.float32
    np.testing.assert_array_equal(outputs["class_id"], reference.argmax(-1))
    np.testing.assert_allclose(
      outputs["probabilities"].sum(-1), 1.0, atol=0.03
    )  # int8: 10 roundings of 1/256
    np.testing.assert_allclose(outputs["logits"], reference, atol=0.1)


def test_dequantize():
  details = {"quantization": (0.5, -2)}
  np.testing.assert_array_equal(
    tflite.dequantize(np.array([-2, 0, 3], np.int8), details), [0.0, 1.0, 2.5]
  )
  float_values = np.array([1.5], np.float32)
  assert tflite.dequantize(float_values, {"quantization": (0.0, 0)}) is not float_values  # a copy


def test_quantized_variants_store_weights_in_a_byte(converted):
  weights_float32 = 784 * 10 * 4
  assert len(converted["float"]) > weights_float32
  assert (
    len(converted["dynamic"]) < weights_float32 / 2 and len(converted["int8"]) < weights_float32 / 2
  )


def test_calibration_covers_every_logits_range_with_a_fraction_of_the_images(
  synthetic_datasets, trained_model
):
  images = synthetic_datasets.train.images
  logits = registry.predict_logits(trained_model, images)
  chosen = tflite.calibration_images(images, logits)
  assert len(chosen) <= tflite.CALIBRATION_SAMPLE + 2 * 10 * tflite.CALIBRATION_EXTREMES
  assert len(chosen) < len(images) / 2 and len({c.tobytes() for c in chosen}) == len(chosen)
  # The int8 logits' range is what calibration sees: the chosen images span all the training ones'.
  chosen_logits = registry.predict_logits(trained_model, chosen)
  np.testing.assert_array_equal(chosen_logits.min(0), logits.min(0))
  np.testing.assert_array_equal(chosen_logits.max(0), logits.max(0))
  batches = [b["image"] for b in tflite.calibration_batches(chosen)]
  assert all(b.dtype == np.float32 and b.shape[1:] == (28, 28) for b in batches)
  np.testing.assert_allclose(np.concatenate(batches) * 255.0, chosen, atol=1e-4)


def test_unknown_variant_is_refused(tmp_path):
  with pytest.raises(ValueError, match="unknown TFLite variant 'int4'"):
    tflite.convert("int4", tmp_path, None, None)


def guide_python_snippet() -> str:
  """The TFLite guide's Python snippet for the raw-tensor files."""
  guide = (Path(__file__).resolve().parents[1] / "docs" / "guides" / "tflite.md").read_text()
  section = guide.split("## The raw-tensor files, with LiteRT")[1].split("\n## ")[0]
  return section.split("```python\n")[1].split("```")[0]


@pytest.mark.parametrize("variant", tflite.VARIANTS)
def test_guide_python_snippet_reads_every_variant(
  converted, trained_model, synthetic_datasets, tmp_path, monkeypatch, capsys, variant
):
  (tmp_path / "exported" / "tflite" / "1").mkdir(parents=True)
  (tmp_path / "exported" / "tflite" / "1" / f"kmnist_{variant}.tflite").write_bytes(
    converted[variant]
  )
  snippet = guide_python_snippet()
  assert "kmnist_int8.tflite" in snippet and "np.zeros((1, 28, 28), np.uint8)" in snippet
  snippet = snippet.replace("kmnist_int8", f"kmnist_{variant}").replace(
    "np.zeros((1, 28, 28), np.uint8)", "image"
  )
  image = synthetic_datasets.test.images[:1]
  monkeypatch.chdir(tmp_path)
  exec(snippet, {"image": image})
  _, digit, _, probability = capsys.readouterr().out.split()
  keras_probabilities = trained_model.predict(image / 255.0, verbose=0)
  keras_probabilities = np.exp(keras_probabilities) / np.exp(keras_probabilities).sum()
  assert int(digit) == keras_probabilities.argmax()
  assert float(probability) == pytest.approx(keras_probabilities.max(), abs=2 / 256)


def test_intermediate_tensor_names_are_stripped_but_not_the_signature(
  converted, synthetic_datasets
):
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(converted["float"]))
  (signature,) = model.signatureDefs
  named = {io.tensorIndex for io in [*signature.inputs, *signature.outputs]}
  names = [t.name for t in model.subgraphs[0].tensors]
  assert all(names[i] for i in named)
  assert not any(name for i, name in enumerate(names) if i not in named)
  # Idempotent; what the stripped models compute is checked against Keras by the other tests.
  assert tflite.strip_intermediate_names(converted["float"]) == converted["float"]
