"""Reading MNIST through TFDS (mocked in the fast tests, the real prepared data in the slow ones)
and the cache."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from kmnist import data


def test_load_reads_three_splits_through_tfds(tmp_path):
  with tfds.testing.mock_data(num_examples=30):
    datasets = data.load(data_dir=str(tmp_path))
  for split in (datasets.train, datasets.validation, datasets.test):
    assert split.images.shape == (30, 28, 28) and split.images.dtype == np.uint8
    assert split.labels.shape == (30,) and split.labels.dtype == np.int64


def test_decoded_splits_are_cached_beside_the_prepared_dataset(
    tmp_path, synthetic_datasets, monkeypatch
):
  cache = tmp_path / "mnist" / data.TFDS_VERSION / data.SPLITS_CACHE
  data.write_cache(cache, synthetic_datasets)
  monkeypatch.setattr(data, "tfds", None)  # any TFDS use would now fail
  loaded = data.load(data_dir=str(tmp_path))
  for name in data.SPLITS:
    np.testing.assert_array_equal(
        getattr(loaded, name).images, getattr(synthetic_datasets, name).images
    )
    np.testing.assert_array_equal(
        getattr(loaded, name).labels, getattr(synthetic_datasets, name).labels
    )


def test_a_damaged_cache_is_ignored(tmp_path):
  cache = tmp_path / "mnist" / data.TFDS_VERSION / data.SPLITS_CACHE
  cache.parent.mkdir(parents=True)
  cache.write_bytes(b"PK\x03\x04 truncated")
  with tfds.testing.mock_data(num_examples=30):
    datasets = data.load(data_dir=str(tmp_path))
  assert len(datasets.train) == 30


@pytest.mark.slow
def test_real_splits_follow_the_tutorial(real_datasets, real_data_dir):
  assert (len(real_datasets.train), len(real_datasets.validation), len(real_datasets.test)) == (
      55000,
      5000,
      10000,
  )
  full_train = tfds.builder("mnist", data_dir=real_data_dir).as_dataset(
      split="train", as_supervised=True
  )
  full_labels = np.concatenate([y for _, y in tfds.as_numpy(full_train.batch(60000))])
  np.testing.assert_array_equal(full_labels[:55000], real_datasets.train.labels)
  np.testing.assert_array_equal(full_labels[55000:], real_datasets.validation.labels)
  for split in (real_datasets.train, real_datasets.validation, real_datasets.test):
    assert split.images.max() == 255 and split.images.min() == 0
    assert set(np.unique(split.labels)) == set(range(10))


@pytest.mark.slow
def test_real_cache_matches_tfds(real_data_dir):
  cached = data.load(
      data_dir=real_data_dir
  )  # the fixture's first load wrote the cache; this one reads it
  builder = tfds.builder(f"mnist:{data.TFDS_VERSION}", data_dir=real_data_dir)
  for name, tfds_split in data.SPLITS.items():
    from_tfds = data.read_split(builder, tfds_split)
    np.testing.assert_array_equal(getattr(cached, name).images, from_tfds.images)
    np.testing.assert_array_equal(getattr(cached, name).labels, from_tfds.labels)
