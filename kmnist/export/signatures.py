"""The serving contract every export keeps: signature names, input tensors, named outputs.

    serving_default: image uint8 [None, 28, 28] (raw pixels 0-255, white digit on black)
    serving_float:   x float32 [None, 784] (pixels in [0, 1], flattened: the tutorial's `x`)
    both return      class_id int64 [None], probabilities float32 [None, 10],
                     logits float32 [None, 10]

Shared by the SavedModel and the TFLite models, so both are built from the same definitions.
"""

import tensorflow as tf

from kmnist.data.spec import IMAGE_SHAPE

SERVING_SIGNATURE = "serving_default"
FLOAT_SIGNATURE = "serving_float"
IMAGE_SPEC = tf.TensorSpec((None,) + IMAGE_SHAPE, tf.uint8, name="image")
FLAT_SPEC = tf.TensorSpec((None, IMAGE_SHAPE[0] * IMAGE_SHAPE[1]), tf.float32, name="x")


def outputs_from_logits(logits) -> dict:
  """The named outputs every signature returns."""
  return {
    "class_id": tf.argmax(logits, axis=-1),
    "probabilities": tf.nn.softmax(logits, axis=-1),
    "logits": logits,
  }
