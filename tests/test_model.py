import math

import numpy as np

from kmnist import model as model_lib


def test_model_maps_images_to_ten_logits():
  model = model_lib.build_model()
  assert model.input_shape == (None, 28, 28)
  assert model.output_shape == (None, 10)
  assert model.count_params() == 784 * 10 + 10


def test_weights_start_at_zero_like_the_tutorial():
  model = model_lib.build_model()
  assert all(not np.any(w) for w in model.get_weights())


def test_initial_loss_is_log_10():
  model = model_lib.compile_model(model_lib.build_model(), learning_rate=0.5)
  x = np.random.RandomState(0).rand(8, 28, 28).astype(np.float32)
  y = np.eye(10, dtype=np.float32)[np.arange(8)]
  loss = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
  assert math.isclose(loss, math.log(10), rel_tol=1e-5)


def test_one_sgd_step_is_the_tutorials_gradient_step():
  # From zero weights, softmax is uniform, so the mean cross-entropy gradient is x^T (1/10 - y) / batch.
  lr, batch = 0.5, 4
  model = model_lib.compile_model(model_lib.build_model(), learning_rate=lr)
  x = np.random.RandomState(0).rand(batch, 28, 28).astype(np.float32)
  y = np.eye(10, dtype=np.float32)[[1, 2, 3, 3]]
  model.train_on_batch(x, y)
  kernel, bias = model.get_weights()
  grad_logits = (np.full((batch, 10), 0.1) - y) / batch
  np.testing.assert_allclose(kernel, -lr * x.reshape(batch, -1).T @ grad_logits, atol=1e-6)
  np.testing.assert_allclose(bias, -lr * grad_logits.sum(0), atol=1e-6)
