"""The models: the tutorial's softmax regression exactly as the tutorial has it, the MLP and the
CNN, and the schedules they train on."""

import math

import keras
import numpy as np
import pytest

from kmnist import models
from kmnist.config import TrainConfig


def test_softmax_maps_images_to_ten_logits_from_zero_weights():
  model = models.build("softmax")
  assert model.input_shape == (None, 28, 28)
  assert model.output_shape == (None, 10)
  assert model.count_params() == 784 * 10 + 10
  assert all(not np.any(w) for w in model.get_weights())  # tf.zeros, as the tutorial


def test_initial_loss_is_log_10():
  model = models.compile_model(models.build(), TrainConfig())
  x = np.random.RandomState(0).rand(8, 28, 28).astype(np.float32)
  y = np.eye(10, dtype=np.float32)[np.arange(8)]
  loss = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
  assert math.isclose(loss, math.log(10), rel_tol=1e-5)


def test_one_sgd_step_is_the_tutorials_gradient_step():
  # From zero weights, softmax is uniform, so the mean cross-entropy gradient is x^T (1/10 - y) /
  # batch.
  lr, batch = 0.5, 4
  model = models.compile_model(models.build(), TrainConfig(learning_rate=lr))
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
    models.predict_logits(trained_model, images), expected, rtol=1e-5, atol=1e-5
  )


def test_unknown_model_name():
  with pytest.raises(KeyError):
    models.build("resnet")


@pytest.mark.parametrize(
  "name, parameters", [("mlp", 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10), ("cnn", None)]
)
def test_every_model_maps_images_to_ten_logits(name, parameters):
  model = models.build(name)
  assert model.input_shape == (None, 28, 28) and model.output_shape == (None, 10)
  if parameters:
    assert model.count_params() == parameters
  logits = model(np.random.RandomState(0).rand(3, 28, 28).astype(np.float32), training=False)
  assert logits.shape == (3, 10) and np.isfinite(logits).all()


def test_the_cnns_batch_norm_uses_the_whole_global_batch():
  norms = [layer for layer in models.build("cnn").layers if "norm" in layer.name]
  assert len(norms) == 3 and all(layer.synchronized for layer in norms)


def test_cosine_schedule_warms_up_then_decays_to_zero():
  config = TrainConfig(model="cnn", steps=1000, warmup_steps=100, learning_rate=0.004)
  schedule = models.learning_rate(config)
  rates = [float(schedule(step)) for step in (0, 50, 100, 550, 1000)]
  assert rates[0] == 0 and rates[1] == pytest.approx(0.002) and rates[2] == pytest.approx(0.004)
  assert rates[3] == pytest.approx(0.002, rel=1e-3) and rates[4] == pytest.approx(0.0, abs=1e-9)
  assert models.learning_rate(TrainConfig()) == 0.5  # the tutorial's: constant
  assert isinstance(models.optimizer(config), keras.optimizers.Adam)
