import numpy as np
import pytest

from kmnist import export, tflite
from kmnist import model as model_lib
from kmnist.errors import KmnistError


@pytest.fixture(scope="module")
def trained_model(synthetic_datasets):
  model = model_lib.compile_model(model_lib.build_model(), learning_rate=0.5)
  train = synthetic_datasets.train
  model.fit(train.images / 255.0, np.eye(10)[train.labels], epochs=1, batch_size=100, verbose=0)
  return model


def test_export_writes_saved_model_and_tflite_that_reproduce_keras(tmp_path, trained_model, synthetic_datasets):
  test = synthetic_datasets.test
  sm_dir, tflite_paths = export.export_and_verify(trained_model, test, tmp_path)
  assert sm_dir == tmp_path / "saved_model" / "1"
  assert (sm_dir / "saved_model.pb").is_file()
  assert tflite_paths == {"float": tmp_path / "tflite" / "1" / "kmnist_float.tflite"}
  reference = trained_model.predict(test.images / 255.0, verbose=0)
  outputs = tflite.predict_tflite(tflite_paths["float"], test.images)
  np.testing.assert_array_equal(outputs["class_id"], reference.argmax(-1))
  np.testing.assert_allclose(outputs["logits"], reference, atol=1e-3)
  # The pair shares the next free version number.
  sm_dir2, paths2 = export.export_and_verify(trained_model, test, tmp_path)
  assert sm_dir2.name == "2" and paths2["float"].parent.name == "2"


@pytest.mark.parametrize("garbage", [
    lambda logits: np.full_like(logits, np.nan),
    lambda logits: logits * 1e30,
    lambda logits: logits[::-1],
])
def test_check_outputs_rejects_garbage(garbage):
  logits = np.random.RandomState(0).randn(100, 10).astype(np.float32)
  bad = garbage(logits)
  with pytest.raises(KmnistError, match="does not reproduce the Keras model"):
    export.check_outputs("float", {"class_id": bad.argmax(-1), "logits": bad}, logits)
  assert export.check_outputs("float", {"class_id": logits.argmax(-1), "logits": logits + 1e-6}, logits)


def test_a_failed_check_leaves_no_export(tmp_path, trained_model, synthetic_datasets, monkeypatch):
  def garbage_predictions(model_bytes, images):
    return {"class_id": np.zeros(len(images), np.int64), "logits": np.full((len(images), 10), 1e30, np.float32)}

  monkeypatch.setattr(tflite, "predict_tflite", garbage_predictions)
  with pytest.raises(KmnistError, match="the float export does not reproduce"):
    export.export_and_verify(trained_model, synthetic_datasets.test, tmp_path)
  assert list((tmp_path / "saved_model").iterdir()) == []
  assert list((tmp_path / "tflite").iterdir()) == []


def test_a_non_chief_worker_stops_after_the_collective_steps(tmp_path, trained_model, synthetic_datasets):
  # Under multi_worker the other workers join the Keras predictions and the SavedModel write (collective
  # operations), into a directory run() then deletes; checking and converting is the chief's alone.
  sm_dir, tflite_paths = export.export_and_verify(trained_model, synthetic_datasets.test, tmp_path, chief=False)
  assert (sm_dir / "saved_model.pb").is_file()
  assert tflite_paths == {} and not (tmp_path / "tflite").exists()
