"""The `tf.data` pipelines: the seeded training order, the augmentation, evaluation batches.

The training order is a function of the seed alone, kept apart from the pixels as batches of example
indices: a resumed run skips the batches it has seen without touching pixels, the benchmarks feed
other implementations exactly the same batches, and under a strategy each replica gathers only its
rows (kmnist.training.batches).

The functions traced here and in kmnist.export are straight-line TensorFlow: they are traced without
autograph, whose rewrite of their source would only cost start-up time.
"""

import math

import tensorflow as tf

from kmnist.data.spec import IMAGE_SHAPE, NUM_CLASSES
from kmnist.data.splits import Split

# --augment: small turns and shifts, as handwriting varies (BUILD_NOTES.md, "Settings, data,
# models").
MAX_DEGREES = 12.0
MAX_SHIFT = 2.0


def preprocess(images, labels):
  """uint8 pixels -> float32 in [0, 1]; integer labels -> one-hot float32 (the tutorial's y_)."""
  return tf.cast(images, tf.float32) / 255.0, tf.one_hot(labels, NUM_CLASSES, dtype=tf.float32)


def batch_indices(
  num_examples: int, batch_size: int, seed: int, start_step: int = 0
) -> tf.data.Dataset:
  """The training order: endless batches of example indices, reshuffled every epoch, from `seed`."""
  order = tf.data.Dataset.range(num_examples).shuffle(
    num_examples, seed=seed, reshuffle_each_iteration=True
  )
  return order.repeat().batch(batch_size, drop_remainder=True).skip(start_step)


def train_dataset(
  split: Split,
  batch_size: int,
  seed: int,
  start_step: int = 0,
  indices=None,
  augment: bool = False,
) -> tf.data.Dataset:
  """Endless batches of (image, one-hot label) in the order of `batch_indices`, augmented if asked.

  `indices`, a dataset of index batches from `start_step` on, replaces that order (see
  replica_batches).
  """
  # The split stays in memory as two tensors; a batch is one gather, not 100 slices. Only the small
  # index pipeline may be rebuilt per iterator (see replica_batches); the pixels are captured once.
  images, labels = tf.constant(split.images), tf.constant(split.labels)
  ds = batch_indices(len(split), batch_size, seed, start_step) if indices is None else indices

  def batch(step, index):
    x, y = preprocess(tf.gather(images, index), tf.gather(labels, index))
    # Seeded by (seed, step): a rerun, a resumed run and every strategy see the same digits.
    return (shift_and_rotate(x, tf.stack([tf.cast(seed, tf.int64), step])) if augment else x), y

  ds = ds.enumerate(start=start_step).map(
    tf.autograph.experimental.do_not_convert(batch), num_parallel_calls=tf.data.AUTOTUNE
  )
  return ds.prefetch(tf.data.AUTOTUNE)


def shift_and_rotate(images, seed) -> tf.Tensor:
  """Each image [N, 28, 28] turned by up to MAX_DEGREES about its centre and shifted by up to
  MAX_SHIFT pixels each way, bilinearly, black outside; a function of the stateless `seed` alone."""
  n = tf.shape(images)[0]
  u = tf.random.stateless_uniform([n, 3], seed=seed, minval=-1.0, maxval=1.0)
  angle = u[:, 0] * (MAX_DEGREES * math.pi / 180)
  shift_x, shift_y = u[:, 1] * MAX_SHIFT, u[:, 2] * MAX_SHIFT
  cos, sin = tf.cos(angle), tf.sin(angle)
  centre = (IMAGE_SHAPE[0] - 1) / 2
  # Where each output pixel (x, y) is read from: the inverse rotation about the centre of the
  # shifted position (TensorFlow's projective transform maps output to input coordinates).
  transforms = tf.stack(
    [
      cos,
      sin,
      centre - cos * (centre + shift_x) - sin * (centre + shift_y),
      -sin,
      cos,
      centre + sin * (centre + shift_x) - cos * (centre + shift_y),
      tf.zeros_like(angle),
      tf.zeros_like(angle),
    ],
    axis=1,
  )
  moved = tf.raw_ops.ImageProjectiveTransformV3(
    images=images[..., None],
    transforms=transforms,
    output_shape=IMAGE_SHAPE,
    fill_value=0.0,
    interpolation="BILINEAR",
    fill_mode="CONSTANT",
  )
  return moved[..., 0]


def eval_dataset(split: Split, batch_size: int) -> tf.data.Dataset:
  """Every example once, in order, in batches of (image, one-hot label)."""
  ds = tf.data.Dataset.from_tensor_slices((split.images, split.labels)).cache()
  return (
    ds.batch(batch_size)
    .map(tf.autograph.experimental.do_not_convert(preprocess), num_parallel_calls=tf.data.AUTOTUNE)
    .prefetch(tf.data.AUTOTUNE)
  )
