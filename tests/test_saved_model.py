import numpy as np
import pytest
import tensorflow as tf

from kmnist import layout, saved_model
from kmnist.errors import KmnistError


def test_versions_count_up_and_never_overwrite(tmp_path, trained_model):
  base = tmp_path / "saved_model"
  assert saved_model.export_saved_model(trained_model, base) == base / "1"
  assert saved_model.export_saved_model(trained_model, base) == base / "2"
  assert saved_model.export_saved_model(trained_model, base, version=7) == base / "7"
  assert layout.next_version(base) == 8
  before = sorted(p.name for p in (base / "7").rglob("*"))
  with pytest.raises(KmnistError, match="already exists"):
    saved_model.export_saved_model(trained_model, base, version=7)
  assert sorted(p.name for p in (base / "7").rglob("*")) == before
  assert sorted(p.name for p in base.iterdir()) == ["1", "2", "7"]  # no temporary leftovers


def test_serving_signature_contract(tmp_path, trained_model):
  export_dir = saved_model.export_saved_model(trained_model, tmp_path / "saved_model")
  serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
  (spec,) = serve.structured_input_signature[1].values()
  assert (spec.name, spec.dtype, spec.shape.as_list()) == ("image", tf.uint8, [None, 28, 28])
  outputs = serve.structured_outputs
  assert {k: (v.dtype, v.shape.as_list()) for k, v in outputs.items()} == {
      "class_id": (tf.int64, [None]),
      "probabilities": (tf.float32, [None, 10]),
      "logits": (tf.float32, [None, 10]),
  }


def test_saved_model_reproduces_keras(tmp_path, trained_model, synthetic_datasets):
  images = synthetic_datasets.test.images
  export_dir = saved_model.export_saved_model(trained_model, tmp_path / "saved_model")
  outputs = saved_model.predict_saved_model(export_dir, images)
  reference = trained_model.predict(images / 255.0, verbose=0)
  np.testing.assert_allclose(outputs["logits"], reference, atol=1e-4)
  np.testing.assert_array_equal(outputs["class_id"], reference.argmax(-1))
  np.testing.assert_allclose(outputs["probabilities"].sum(-1), 1.0, atol=1e-5)
