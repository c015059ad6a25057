"""The input pipeline: scaling and one-hot labels, a seeded training order that covers every
example, evaluation batches in order, the augmentation."""

import numpy as np
import tensorflow as tf

from kmnist.data import input_pipeline, splits


def test_preprocess_scales_to_unit_range_and_one_hot_encodes():
  images = np.array([[[0] * 28] * 28, [[255] * 28] * 28], np.uint8)
  x, y = input_pipeline.preprocess(images, np.array([3, 9]))
  assert x.dtype == tf.float32 and y.dtype == tf.float32
  assert float(tf.reduce_min(x)) == 0.0 and float(tf.reduce_max(x)) == 1.0
  np.testing.assert_array_equal(y.numpy().argmax(-1), [3, 9])
  np.testing.assert_array_equal(y.numpy().sum(-1), [1, 1])


def first_labels(split, seed, n=3):
  return np.concatenate(
    [y.numpy().argmax(-1) for _, y in input_pipeline.train_dataset(split, 50, seed).take(n)]
  )


def test_train_dataset_is_shuffled_reproducibly(synthetic_datasets):
  split = synthetic_datasets.train
  images, labels = next(iter(input_pipeline.train_dataset(split, 50, seed=0)))
  assert images.shape == (50, 28, 28) and labels.shape == (50, 10)
  assert float(tf.reduce_max(images)) <= 1.0
  same = first_labels(split, seed=0)
  np.testing.assert_array_equal(same, first_labels(split, seed=0))
  assert not np.array_equal(same, first_labels(split, seed=1))
  assert not np.array_equal(same, split.labels[:150])  # really shuffled


def test_every_example_once_per_epoch_and_resume_skips_exactly():
  index_images = np.arange(100, dtype=np.uint8)[:, None, None] * np.ones((1, 28, 28), np.uint8)
  split = splits.Split(images=index_images, labels=np.arange(100) % 10)

  def example_ids(batches):
    return [round(float(x[0, 0]) * 255) for batch, _ in batches for x in batch]

  epoch = example_ids(input_pipeline.train_dataset(split, 10, seed=0).take(10))
  assert sorted(epoch) == list(range(100))
  # A run resumed at step 4 sees what the uninterrupted run saw from its 5th batch on, across the
  # epoch edge.
  resumed = example_ids(input_pipeline.train_dataset(split, 10, seed=0, start_step=4).take(10))
  uninterrupted = example_ids(input_pipeline.train_dataset(split, 10, seed=0).take(14))
  assert resumed == uninterrupted[40:]


def test_eval_dataset_keeps_order_and_every_example(synthetic_datasets):
  split = synthetic_datasets.test
  labels = np.concatenate([y.numpy().argmax(-1) for _, y in input_pipeline.eval_dataset(split, 64)])
  np.testing.assert_array_equal(labels, split.labels)


def test_augmentation_is_a_function_of_seed_and_step(synthetic_datasets):
  split = synthetic_datasets.train

  def first_batches(seed, start_step=0, n=3):
    ds = input_pipeline.train_dataset(split, 50, seed, start_step, augment=True)
    return [x.numpy() for x, _ in ds.take(n)]

  plain = [x.numpy() for x, _ in input_pipeline.train_dataset(split, 50, 0).take(3)]
  once, again = first_batches(0), first_batches(0)
  for a, b, p in zip(once, again, plain, strict=True):
    np.testing.assert_array_equal(a, b)  # a rerun sees the same digits
    assert not np.array_equal(a, p)  # and they are moved
    # moved, not destroyed: about as much ink, in the unit range
    assert a.min() >= 0 and a.max() <= 1 and abs(a.sum() / p.sum() - 1) < 0.1
  np.testing.assert_array_equal(
    first_batches(0, start_step=2, n=1)[0], once[2]
  )  # resumed: the same
  assert not np.array_equal(first_batches(1)[0], once[0])


def test_no_turn_and_no_shift_is_the_identity(monkeypatch, synthetic_datasets):
  monkeypatch.setattr(input_pipeline, "MAX_DEGREES", 0.0)
  monkeypatch.setattr(input_pipeline, "MAX_SHIFT", 0.0)
  x = synthetic_datasets.test.images[:8].astype(np.float32) / 255
  moved = input_pipeline.shift_and_rotate(tf.constant(x), tf.constant([0, 0], tf.int64))
  np.testing.assert_allclose(moved.numpy(), x, atol=1e-6)
