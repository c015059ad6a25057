"""The tutorial's model: softmax regression, y = softmax(Wx + b), as a Keras model of logits.

Weights and biases start at zero, exactly as the tutorial's `tf.zeros` (softmax regression is
convex, so zeros are a fine start, and they make the initial model independent of the seed: only the
batch order varies).
"""

import keras

from kmnist.data.spec import IMAGE_SHAPE, NUM_CLASSES


def build() -> keras.Model:
  """Flatten -> Dense(10): 28x28 float image in [0, 1] -> 10 logits."""
  return keras.Sequential(
    [
      keras.Input(IMAGE_SHAPE, name="image"),
      keras.layers.Flatten(name="flatten"),
      keras.layers.Dense(
        NUM_CLASSES, kernel_initializer="zeros", bias_initializer="zeros", name="logits"
      ),
    ],
    name="softmax_regression",
  )
