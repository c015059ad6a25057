"""The models: the tutorial's softmax regression exactly as the tutorial has it, the MLP and the
CNN, the schedules they train on, and a new model that needs nothing but its registry entry."""

import dataclasses
import math

import keras
import numpy as np
import pytest
from absl import flags
from fastapi.testclient import TestClient
from kserve.model_repository import ModelRepository
from kserve.protocol.dataplane import DataPlane

from kmnist.cli import common
from kmnist.cli import train as train_cli
from kmnist.export import record
from kmnist.models import registry
from kmnist.predict import classify
from kmnist.serve import model as serve_model
from kmnist.serve import server as server_lib
from kmnist.serve.protocols import tf_serving_grpc
from kmnist.serve.repository import versions
from kmnist.serve.web import app as app_lib
from kmnist.training import optimization, train
from kmnist.training.config import TrainConfig
from kmnist.util.errors import KmnistError
from kmnist.visualize import pictures


def test_softmax_maps_images_to_ten_logits_from_zero_weights():
  model = registry.build("softmax")
  assert model.input_shape == (None, 28, 28)
  assert model.output_shape == (None, 10)
  assert model.count_params() == 784 * 10 + 10
  assert all(not np.any(w) for w in model.get_weights())  # tf.zeros, as the tutorial


def test_initial_loss_is_log_10():
  model = optimization.compile_model(registry.build(), TrainConfig())
  x = np.random.RandomState(0).rand(8, 28, 28).astype(np.float32)
  y = np.eye(10, dtype=np.float32)[np.arange(8)]
  loss = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
  assert math.isclose(loss, math.log(10), rel_tol=1e-5)


def test_one_sgd_step_is_the_tutorials_gradient_step():
  # From zero weights, softmax is uniform, so the mean cross-entropy gradient is x^T (1/10 - y) /
  # batch.
  lr, batch = 0.5, 4
  model = optimization.compile_model(registry.build(), TrainConfig(learning_rate=lr))
  x = np.random.RandomState(0).rand(batch, 28, 28).astype(np.float32)
  y = np.eye(10, dtype=np.float32)[[1, 2, 3, 3]]
  model.train_on_batch(x, y)
  kernel, bias = model.get_weights()
  grad_logits = (np.full((batch, 10), 0.1) - y) / batch
  np.testing.assert_allclose(kernel, -lr * x.reshape(batch, -1).T @ grad_logits, atol=1e-6)
  np.testing.assert_allclose(bias, -lr * grad_logits.sum(0), atol=1e-6)


def test_predict_logits_scales_raw_pixels_as_training_does(trained_model, synthetic_datasets):
  images = synthetic_datasets.test.images[:20]
  expected = trained_model(images.astype(np.float32) / 255.0).numpy()
  np.testing.assert_allclose(
    registry.predict_logits(trained_model, images), expected, rtol=1e-5, atol=1e-5
  )


def test_unknown_model_name():
  with pytest.raises(
    KmnistError, match="--model=resnet is not known; use one of softmax, mlp, cnn"
  ):
    registry.build("resnet")


@pytest.mark.parametrize(
  "name, parameters", [("mlp", 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10), ("cnn", None)]
)
def test_every_model_maps_images_to_ten_logits(name, parameters):
  model = registry.build(name)
  assert model.input_shape == (None, 28, 28) and model.output_shape == (None, 10)
  if parameters:
    assert model.count_params() == parameters
  logits = model(np.random.RandomState(0).rand(3, 28, 28).astype(np.float32), training=False)
  assert logits.shape == (3, 10) and np.isfinite(logits).all()


def test_the_cnns_batch_norm_uses_the_whole_global_batch():
  norms = [layer for layer in registry.build("cnn").layers if "norm" in layer.name]
  assert len(norms) == 3 and all(layer.synchronized for layer in norms)


def build_toy() -> keras.Model:
  """A model this test alone knows: no module of kmnist names it."""
  inputs = keras.Input((28, 28), name="image")
  hidden = keras.layers.Dense(16, activation="relu", name="toy_hidden")(
    keras.layers.Flatten()(inputs)
  )
  return keras.Model(inputs, keras.layers.Dense(10, name="logits")(hidden), name="toy")


def test_a_new_model_is_one_builder_and_one_registry_entry(
  tmp_path, monkeypatch, synthetic_datasets
):
  schedule = registry.Schedule(60, 50, "adam", 1e-2, "cosine", 0.1, 0.0, 20)
  toy = registry.Entry("toy", build_toy, schedule, schedule, "hidden_units", "toy_hidden", "toy")
  monkeypatch.setitem(registry.MODELS, "toy", toy)  # registered for this test only
  # Its flag: --model lists it, and its schedule is the default.
  fv = flags.FlagValues()
  train_cli.define_flags(fv)
  fv(["kmnist-train", "--model=toy", f"--model_dir={tmp_path / 'run'}"])
  config = dataclasses.replace(
    common.config_from_flags(fv), export_dir=str(tmp_path / "exported"), tflite=("float", "int8")
  )
  assert (config.steps, config.optimizer, config.warmup_steps) == (60, "adam", 6)
  # Train, score, export (every file checked against Keras), draw.
  result = train.run(config, datasets_override=synthetic_datasets, strategy_override=None)
  assert result.metrics["test_accuracy"] > 0.8
  assert sorted(result.pictures) == sorted(pictures.PICTURES)  # weights.png as hidden units
  about = record.read(result.saved_model_dir)
  assert (about["model"], about["training_flags"]["model"]) == ("toy", "toy")
  assert record.read(result.tflite_paths["int8"].parent)["model"] == "toy"
  # Predict: the export's own signature, and kmnist-predict's JSON says what answered.
  digits = synthetic_datasets.test.images[:20]
  expected = result.model.predict(digits / 255.0, verbose=0).argmax(-1)
  predictor = classify.load_predictor("saved_model", result.saved_model_dir)
  np.testing.assert_array_equal(predictor(digits)["class_id"], expected)
  # Serve: the server loads it, names it, and answers TF Serving's REST API.
  manager = versions.VersionManager(
    result.saved_model_dir.parent, tf_serving_grpc.load_and_warm_up, poll_seconds=0
  )
  manager.load_initial()
  assert manager.current.model_name == "toy"
  repository = ModelRepository()
  repository.update(serve_model.KmnistModel("kmnist", manager, 100))
  app = app_lib.create_app(
    DataPlane(model_registry=repository), server_lib.FollowBaseRepository(repository), 1 << 20
  )
  with TestClient(app) as client:
    reply = client.post("/v1/models/kmnist:predict", json={"instances": digits.tolist()})
    explained = client.post("/v1/models/kmnist:explain", json={"instances": digits[:1].tolist()})
  assert [p["class_id"] for p in reply.json()["predictions"]] == expected.tolist()
  assert explained.json()["model"] == "toy"
