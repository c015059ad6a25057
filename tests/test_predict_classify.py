"""Prediction as a library: which model a path names, reading users' files, loading a model once,
and results."""

import numpy as np
import pytest
from PIL import Image

from kmnist.export import saved_model, tflite
from kmnist.models import registry
from kmnist.predict import classify, model_paths
from kmnist.util.errors import KmnistError


@pytest.fixture(scope="module")
def synthetic_export(tmp_path_factory, trained_model):
  return saved_model.export_saved_model(
    trained_model, tmp_path_factory.mktemp("predict") / "saved_model"
  )


def test_resolve_model_accepts_version_dirs_bases_tflite_and_defaults_to_the_reference(
  tmp_path, synthetic_export
):
  assert model_paths.resolve_model(str(synthetic_export)) == ("saved_model", synthetic_export)
  assert model_paths.resolve_model(str(synthetic_export.parent)) == (
    "saved_model",
    synthetic_export,
  )
  reference = model_paths.reference_export()
  assert model_paths.resolve_model(None) == ("saved_model", reference / "saved_model" / "1")
  float_file = reference / "tflite" / "1" / "kmnist_float.tflite"
  assert model_paths.resolve_model(str(float_file)) == ("tflite", float_file)
  not_tflite = tmp_path / "fake.tflite"
  not_tflite.write_bytes(b"\0" * 64)
  with pytest.raises(KmnistError, match="is not a TFLite model"):
    model_paths.resolve_model(str(not_tflite))
  for bad in (tmp_path, tmp_path / "missing", tmp_path / "fake.png"):
    with pytest.raises(KmnistError, match="is not a SavedModel directory"):
      model_paths.resolve_model(str(bad))


def test_load_inputs_names_every_digit_and_every_bad_file(tmp_path, mnist_digits):
  images = mnist_digits.images
  Image.fromarray(images[0]).save(tmp_path / "a.png")
  np.save(tmp_path / "b.npy", images[1:4])
  (tmp_path / "c.png").write_text("not an image")
  paths = [tmp_path / "a.png", tmp_path / "b.npy", tmp_path / "c.png", tmp_path / "missing.npy"]
  names, digits, errors = classify.load_inputs(paths)
  assert names == [str(tmp_path / "a.png")] + [f"{tmp_path / 'b.npy'}[{i}]" for i in range(3)]
  np.testing.assert_array_equal(digits, images[:4])
  assert errors == [
    f"{tmp_path / 'c.png'}: not a readable image (UnidentifiedImageError); give a PNG of one digit",
    f"{tmp_path / 'missing.npy'}: no such file",
  ]


def test_classify_keeps_the_order_of_the_files_and_batches_the_model(
  tmp_path, mnist_digits, monkeypatch
):
  monkeypatch.setattr(classify, "BATCH", 4)
  np.save(tmp_path / "a.npy", mnist_digits.images[:6])
  (tmp_path / "b.png").write_bytes(b"junk")
  Image.fromarray(mnist_digits.images[6]).save(tmp_path / "c.png")
  calls = []

  def predictor(digits):
    calls.append(len(digits))
    return {"probabilities": np.eye(10)[np.arange(len(digits)) % 10]}

  items = list(classify.classify([tmp_path / n for n in ("a.npy", "b.png", "c.png")], predictor, 1))
  assert [what for what, _ in items] == ["result"] * 6 + ["error", "result"]
  assert [item["file"] for what, item in items if what == "result"] == [
    f"{tmp_path / 'a.npy'}[{i}]" for i in range(6)
  ] + [str(tmp_path / "c.png")]
  assert max(calls) <= 4 and sum(calls) == 7


def test_saved_model_and_tflite_predictors_agree_and_results_rank_the_digits(
  synthetic_export, synthetic_datasets, tmp_path, trained_model
):
  digits = synthetic_datasets.test.images[:20]
  float_file = tmp_path / "m.tflite"
  float_file.write_bytes(
    tflite.convert("float", synthetic_export, trained_model, synthetic_datasets.train.images)
  )
  outputs = [
    classify.load_predictor("saved_model", synthetic_export)(digits),
    classify.load_predictor("tflite", float_file)(digits),
  ]
  np.testing.assert_array_equal(outputs[0]["class_id"], outputs[1]["class_id"])
  results = classify.format_results([f"d{i}" for i in range(20)], outputs[0], top_k=3)
  assert [r["class_id"] for r in results] == list(outputs[0]["class_id"])
  for r in results:
    probabilities = [t["probability"] for t in r["top"]]
    assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)


def test_broken_models_are_refused_naming_the_file(tmp_path, classifier_bundles):
  broken_sm = tmp_path / "sm"
  broken_sm.mkdir()
  (broken_sm / "saved_model.pb").write_bytes(b"garbage")
  broken_tflite = tmp_path / "m.tflite"
  broken_tflite.write_bytes(b"\0\0\0\0TFL3" + b"\0" * 100)
  cut_bundle = tmp_path / "kmnist_int8_classifier.tflite"  # a bundle cut short
  cut_bundle.write_bytes(classifier_bundles["int8_classifier"][:5000])
  for model, kind in (
    (broken_sm, "saved_model"),
    (broken_tflite, "tflite"),
    (cut_bundle, "tflite"),
  ):
    with pytest.raises(
      KmnistError, match=f"--model={model} could not be loaded as a {kind} \\(.*Error: "
    ):
      classify.load_predictor(kind, model)


def test_a_cnn_export_predicts_as_its_keras_model(tmp_path, trained_models, synthetic_datasets):
  model = trained_models["cnn"]
  export = saved_model.export_saved_model(model, tmp_path / "saved_model")
  digits = synthetic_datasets.test.images[:32]
  float_file = tmp_path / "cnn.tflite"
  float_file.write_bytes(tflite.convert("float", export, model, synthetic_datasets.train.images))
  expected = registry.predict_logits(model, digits).argmax(-1)
  for kind, path in (("saved_model", export), ("tflite", float_file)):
    np.testing.assert_array_equal(classify.load_predictor(kind, path)(digits)["class_id"], expected)
