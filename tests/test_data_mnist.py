"""Reading MNIST through TFDS (mocked in the fast tests, the real prepared data in the slow ones)
and the cache."""

import io
import json
import tempfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds
from hypothesis import given, settings
from hypothesis import strategies as st

from kmnist.data import mnist, splits, tfds_source


def test_load_reads_three_splits_through_tfds(tmp_path):
  with tfds.testing.mock_data(num_examples=30):
    datasets = mnist.load(data_dir=str(tmp_path))
  for split in (datasets.train, datasets.validation, datasets.test):
    assert split.images.shape == (30, 28, 28) and split.images.dtype == np.uint8
    assert split.labels.shape == (30,) and split.labels.dtype == np.int64


def test_decoded_splits_are_cached_beside_the_prepared_dataset(
  tmp_path, synthetic_datasets, monkeypatch
):
  cache = tmp_path / "mnist" / mnist.TFDS_VERSION / mnist.SPLITS_CACHE
  mnist.write_cache(cache, synthetic_datasets)
  monkeypatch.setattr(tfds_source, "decode", None)  # any TFDS use would now fail
  loaded = mnist.load(data_dir=str(tmp_path))
  for name in splits.SPLITS:
    np.testing.assert_array_equal(
      getattr(loaded, name).images, getattr(synthetic_datasets, name).images
    )
    np.testing.assert_array_equal(
      getattr(loaded, name).labels, getattr(synthetic_datasets, name).labels
    )


def test_a_damaged_cache_is_ignored(tmp_path):
  cache = tmp_path / "mnist" / mnist.TFDS_VERSION / mnist.SPLITS_CACHE
  cache.parent.mkdir(parents=True)
  cache.write_bytes(b"PK\x03\x04 truncated")
  with tfds.testing.mock_data(num_examples=30):
    datasets = mnist.load(data_dir=str(tmp_path))
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
  cached = mnist.load(
    data_dir=real_data_dir
  )  # the fixture's first load wrote the cache; this one reads it
  builder = tfds.builder(f"mnist:{mnist.TFDS_VERSION}", data_dir=real_data_dir)
  for name, tfds_split in splits.SPLITS.items():
    from_tfds = tfds_source.read_split(builder, tfds_split)
    np.testing.assert_array_equal(getattr(cached, name).images, from_tfds.images)
    np.testing.assert_array_equal(getattr(cached, name).labels, from_tfds.labels)


# Caches that lie: readable, but not what they say they are. Each is rebuilt from TFDS, with a line
# saying why.
def small_datasets() -> splits.Datasets:
  split = lambda n, v: splits.Split(np.full((n, 28, 28), v, np.uint8), np.arange(n) % 10)  # noqa: E731
  return splits.Datasets(split(6, 1), split(3, 2), split(4, 3))


def edit_cache(cache, edit):
  with np.load(cache) as npz:
    arrays = {name: npz[name] for name in npz.files}
  edit(arrays)
  with open(cache, "wb") as f:
    np.savez(f, **arrays)


def edit_identity(key, value):
  def edit(arrays):
    record = json.loads(str(arrays["identity"]))
    record[key] = value
    arrays["identity"] = np.array(json.dumps(record))

  return edit


def flip_first_pixel(arrays):
  arrays["train_images"][0, 0, 0] ^= 1


@pytest.mark.parametrize(
  "edit, problem",
  [
    (flip_first_pixel, "does not hold the arrays it was written with (edited or truncated)"),
    (
      lambda a: a.update(test_labels=a["test_labels"][:-1]),
      "does not hold the arrays it was written with (edited or truncated)",
    ),
    (edit_identity("dataset", "mnist:3.0.0"), "holds another dataset version"),
    (edit_identity("splits", {"train": "train"}), "holds other splits"),
    (lambda a: a.pop("identity"), "was written by another version of kmnist"),
    (None, "was decoded from other TFDS files than those beside it"),
  ],
  ids=["edited", "truncated", "other version", "other splits", "old format", "other source"],
)
def test_a_cache_that_lies_is_rebuilt_and_says_why(tmp_path, edit, problem):
  version_dir = tmp_path / "mnist" / mnist.TFDS_VERSION
  cache = version_dir / mnist.SPLITS_CACHE
  mnist.write_cache(cache, small_datasets())
  if edit:
    edit_cache(cache, edit)
  else:  # TFDS's files changed (prepared again) since the cache was written
    (version_dir / "dataset_info.json").write_text("{}")
  lines = []
  with tfds.testing.mock_data(num_examples=30):
    datasets = mnist.load(data_dir=str(tmp_path), log=lines.append)
  assert len(datasets.train) == 30  # from TFDS (mocked), not the cache's 6
  assert lines == [f"The decoded-split cache {cache} {problem}; rebuilding it from TFDS's files."]
  rebuilt, why = mnist.read_cache(cache)
  assert why is None and rebuilt.fingerprint == datasets.fingerprint


@settings(max_examples=40, deadline=None)
@given(where=st.floats(0, 1, exclude_max=True), xor=st.integers(1, 255), cut=st.booleans())
def test_a_damaged_cache_is_never_read_as_other_data(where, xor, cut):
  original = small_datasets()
  with tempfile.TemporaryDirectory() as scratch:
    cache = Path(scratch) / mnist.SPLITS_CACHE
    mnist.write_cache(cache, original)
    damaged = bytearray(cache.read_bytes())
    at = int(where * len(damaged))
    if cut:
      del damaged[at:]
    else:
      damaged[at] ^= xor
    cache.write_bytes(bytes(damaged))
    read, why = mnist.read_cache(cache)
  if read is None:
    assert why  # said why, and will be rebuilt
  else:
    assert read.fingerprint == original.fingerprint  # a byte nobody reads (zip metadata)


class PreparingBuilder:
  """Stands for TFDS's builder on a first run: it prints, warns and draws bars as TFDS does."""

  def __init__(self):
    self.examples = []

  def _generate_examples(self):
    for i in range(tfds_source.TOTAL_EXAMPLES):
      yield i, {"image": np.full((28, 28, 1), i % 256, np.uint8), "label": i % 10}

  def download_and_prepare(self, download_config):
    import absl.logging

    print("Downloading and preparing dataset Unknown size ...")  # TFDS's termcolor.cprint
    absl.logging.warning("Variant folder %s has no %s", "/d/mnist/3.0.1", "dataset_info.json")
    self.examples = list(self._generate_examples())


def test_the_first_run_shows_one_progress_display_and_nothing_of_tfds(tmp_path, capsys, caplog):
  shown = []

  class Recorder:
    def __init__(self, label, total):
      shown.append((label, total))

    def update(self, done):
      shown.append(done)

    def finish(self, text):
      shown.append(text)

  builder = PreparingBuilder()
  with tfds_source.quiet_tfds():
    tfds_source.prepare(builder, tmp_path, tmp_path / "mnist" / "3.0.1", Recorder)
  assert len(builder.examples) == tfds_source.TOTAL_EXAMPLES
  # Each picture reaches TFDS as the PNG of the very same pixels, its label unchanged.
  for key, example in builder.examples[:300]:
    with PIL.Image.open(io.BytesIO(example["image"])) as png:
      assert png.mode == "L" and (np.asarray(png) == key % 256).all()
    assert example["label"] == key % 10
  assert shown[0] == (f"Preparing MNIST in {tmp_path / 'mnist' / '3.0.1'} (first run only)", 70_000)
  assert shown[1:-1] == list(range(1, tfds_source.TOTAL_EXAMPLES + 1))
  assert shown[-1].startswith("done in ")
  assert "Downloading and preparing" not in capsys.readouterr().out
  assert not [r for r in caplog.records if "Variant folder" in r.getMessage()]


class BrokenBuilder:
  """TFDS's builder where the disk or the prepared files fail."""

  def __init__(self, prepared, error):
    self.prepared, self.error = prepared, error

  def is_prepared(self):
    return self.prepared

  def download_and_prepare(self, download_config):
    raise self.error

  def as_dataset(self, **kwargs):
    raise self.error


def test_a_full_disk_while_tfds_prepares_is_one_line_naming_the_data_dir(tmp_path, monkeypatch):
  import errno
  import os

  from kmnist.util import disk

  full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "mnist" / "x.tmp"))
  monkeypatch.setattr(tfds, "builder", lambda *a, **k: BrokenBuilder(False, full))
  with pytest.raises(
    disk.DiskError, match=f"^could not write {tmp_path / 'mnist'}: the disk is full"
  ):
    mnist.load(data_dir=str(tmp_path))


def test_prepared_records_that_cannot_be_read_name_the_fix(tmp_path, monkeypatch):
  import tensorflow as tf

  from kmnist.util.errors import KmnistError

  damaged = tf.errors.DataLossError(None, None, "corrupted record at 12")
  monkeypatch.setattr(tfds, "builder", lambda *a, **k: BrokenBuilder(True, damaged))
  version_dir = tmp_path / "mnist" / mnist.TFDS_VERSION
  with pytest.raises(
    KmnistError,
    match=f"the prepared MNIST in {version_dir} cannot be read \\(DataLossError: corrupted "
    f"record at 12\\); delete {version_dir} and run again",
  ):
    mnist.load(data_dir=str(tmp_path))
