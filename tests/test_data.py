import hashlib
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from kmnist import data
from kmnist.errors import KmnistError


def test_vendored_files_are_the_genuine_mnist():
  sums = data.expected_checksums()
  assert sorted(sums) == sorted(data.MNIST_FILES)
  for name in data.MNIST_FILES:
    assert hashlib.sha256((data.VENDORED_DIR / name).read_bytes()).hexdigest() == sums[name]


def test_missing_manual_file_is_named(tmp_path):
  for name in data.MNIST_FILES[1:]:
    shutil.copy(data.VENDORED_DIR / name, tmp_path / name)
  with pytest.raises(KmnistError, match=data.MNIST_FILES[0]):
    data.check_manual_dir(tmp_path)


def test_truncated_manual_file_is_named(tmp_path):
  for name in data.MNIST_FILES:
    shutil.copy(data.VENDORED_DIR / name, tmp_path / name)
  victim = tmp_path / "t10k-labels-idx1-ubyte.gz"
  victim.write_bytes(victim.read_bytes()[:100])
  with pytest.raises(KmnistError, match="t10k-labels-idx1-ubyte.gz is corrupted or truncated"):
    data.check_manual_dir(tmp_path)


def test_load_reads_three_splits_through_tfds(tmp_path):
  with tfds.testing.mock_data(num_examples=30):
    datasets = data.load(data_dir=str(tmp_path))
  for split in (datasets.train, datasets.validation, datasets.test):
    assert split.images.shape == (30, 28, 28) and split.images.dtype == np.uint8
    assert split.labels.shape == (30,) and split.labels.dtype == np.int64


def test_preprocess_scales_to_unit_range_and_one_hot_encodes():
  images = np.array([[[0] * 28] * 28, [[255] * 28] * 28], np.uint8)
  x, y = data.preprocess(images, np.array([3, 9]))
  assert x.dtype == tf.float32 and y.dtype == tf.float32
  assert float(tf.reduce_min(x)) == 0.0 and float(tf.reduce_max(x)) == 1.0
  np.testing.assert_array_equal(y.numpy().argmax(-1), [3, 9])
  np.testing.assert_array_equal(y.numpy().sum(-1), [1, 1])


def _first_batches(split, seed, n=3):
  return [labels.numpy().argmax(-1) for _, labels in data.train_dataset(split, 50, seed).take(n)]


def test_train_dataset_is_shuffled_reproducibly(synthetic_datasets):
  split = synthetic_datasets.train
  images, labels = next(iter(data.train_dataset(split, 50, seed=0)))
  assert images.shape == (50, 28, 28) and labels.shape == (50, 10)
  assert float(tf.reduce_max(images)) <= 1.0
  same = _first_batches(split, seed=0)
  np.testing.assert_array_equal(np.concatenate(same), np.concatenate(_first_batches(split, seed=0)))
  assert not np.array_equal(np.concatenate(same), np.concatenate(_first_batches(split, seed=1)))
  assert not np.array_equal(np.concatenate(same), split.labels[:150])  # really shuffled


def test_train_dataset_covers_every_example_each_epoch():
  index_images = np.arange(100, dtype=np.uint8)[:, None, None] * np.ones((1, 28, 28), np.uint8)
  split = data.Split(images=index_images, labels=np.arange(100) % 10)
  seen = [round(float(x[0, 0]) * 255) for batch, _ in data.train_dataset(split, 10, seed=0).take(10) for x in batch]
  assert sorted(seen) == list(range(100))


def test_eval_dataset_keeps_order_and_every_example(synthetic_datasets):
  split = synthetic_datasets.test
  labels = np.concatenate([y.numpy().argmax(-1) for _, y in data.eval_dataset(split, 64)])
  np.testing.assert_array_equal(labels, split.labels)


@pytest.mark.slow
def test_real_splits_follow_the_tutorial(real_datasets, real_data_dir):
  assert (len(real_datasets.train), len(real_datasets.validation), len(real_datasets.test)) == (55000, 5000, 10000)
  full_train = tfds.builder("mnist", data_dir=real_data_dir).as_dataset(split="train", as_supervised=True)
  full_labels = np.concatenate([y for _, y in tfds.as_numpy(full_train.batch(60000))])
  np.testing.assert_array_equal(full_labels[:55000], real_datasets.train.labels)
  np.testing.assert_array_equal(full_labels[55000:], real_datasets.validation.labels)
  for split in (real_datasets.train, real_datasets.validation, real_datasets.test):
    assert split.images.max() == 255 and split.images.min() == 0
    assert set(np.unique(split.labels)) == set(range(10))


def test_decoded_splits_are_cached_beside_the_prepared_dataset(tmp_path, synthetic_datasets, monkeypatch):
  cache = tmp_path / "mnist" / data.TFDS_VERSION / data.SPLITS_CACHE
  data._write_cache(cache, synthetic_datasets)
  monkeypatch.setitem(__import__("sys").modules, "tensorflow_datasets", None)  # any TFDS use would now fail
  loaded = data.load(data_dir=str(tmp_path))
  for name in data.SPLITS:
    np.testing.assert_array_equal(getattr(loaded, name).images, getattr(synthetic_datasets, name).images)
    np.testing.assert_array_equal(getattr(loaded, name).labels, getattr(synthetic_datasets, name).labels)


def test_a_damaged_cache_is_ignored(tmp_path):
  cache = tmp_path / "mnist" / data.TFDS_VERSION / data.SPLITS_CACHE
  cache.parent.mkdir(parents=True)
  cache.write_bytes(b"PK\x03\x04 truncated")
  with tfds.testing.mock_data(num_examples=30):
    datasets = data.load(data_dir=str(tmp_path))
  assert len(datasets.train) == 30


@pytest.mark.slow
def test_real_cache_matches_tfds(real_data_dir):
  cached = data.load(data_dir=real_data_dir)  # the fixture's first load wrote the cache; this one reads it
  builder = tfds.builder(f"mnist:{data.TFDS_VERSION}", data_dir=real_data_dir)
  for name, tfds_split in data.SPLITS.items():
    from_tfds = data._read_split(builder, tfds_split)
    np.testing.assert_array_equal(getattr(cached, name).images, from_tfds.images)
    np.testing.assert_array_equal(getattr(cached, name).labels, from_tfds.labels)
