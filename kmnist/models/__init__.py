"""The models kmnist trains, by name, and what they share: the loss, the metric, logits on pixels.

Every model takes float32 images [N, 28, 28] in [0, 1] and returns 10 logits; the exports add the
pixel scaling and the softmax around it, so a model module holds only its layers.
"""

import keras
import numpy as np

from kmnist.models import softmax

MODELS = {"softmax": softmax.build}


def build(name: str = "softmax") -> keras.Model:
  return MODELS[name]()


def compile_model(
    model: keras.Model, learning_rate: float, steps_per_execution: int = 1
) -> keras.Model:
  """Mean cross-entropy on logits (stable, unlike the tutorial's log(softmax)) and plain SGD."""
  model.compile(
      optimizer=keras.optimizers.SGD(learning_rate=learning_rate),
      loss=keras.losses.CategoricalCrossentropy(from_logits=True),
      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
      steps_per_execution=steps_per_execution,
  )
  return model


def predict_logits(model: keras.Model, images_uint8: np.ndarray) -> np.ndarray:
  """The model's logits on raw pixels, scaled as in training: the yardstick of every export."""
  return model.predict(images_uint8.astype(np.float32) / 255.0, batch_size=10_000, verbose=0)
