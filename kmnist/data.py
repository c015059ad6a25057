"""MNIST through tensorflow-datasets, prepared offline from the vendored files, split as the tutorial splits it.

train = first 55,000 of TFDS `train`, validation = its last 5,000, test = TFDS `test` (10,000).
Arrays stay raw (uint8 images, integer labels) until the `tf.data` pipeline scales and one-hot encodes them,
so the same arrays feed training, evaluation, export checks and pictures.
"""

import dataclasses
import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np

from kmnist.errors import KmnistError

NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28)
SPLITS = {"train": "train[:55000]", "validation": "train[55000:]", "test": "test"}
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
# The four original files ship inside the package, so a fresh install trains with no network.
VENDORED_DIR = Path(__file__).resolve().parent / "mnist_files"
DEFAULT_DATA_DIR = os.path.join("~", "tensorflow_datasets")  # TFDS's own default.
TFDS_VERSION = "3.0.1"  # pinned: the same bytes on every machine
SPLITS_CACHE = "kmnist_splits.npz"


@dataclasses.dataclass(frozen=True)
class Split:
  """One split as raw arrays: images uint8 [N, 28, 28], labels int64 [N]."""
  images: np.ndarray
  labels: np.ndarray

  def __len__(self):
    return len(self.labels)


@dataclasses.dataclass(frozen=True)
class Datasets:
  train: Split
  validation: Split
  test: Split


def expected_checksums() -> dict[str, str]:
  """sha256 of the genuine files, as TFDS records them (from the vendored SHA256SUMS)."""
  sums = {}
  for line in (VENDORED_DIR / "SHA256SUMS").read_text().splitlines():
    if line.strip():
      digest, name = line.split()
      sums[name] = digest
  return sums


def check_manual_dir(manual_dir) -> Path:
  """Fails fast, naming the file, unless `manual_dir` holds the four genuine MNIST files.

  TFDS would otherwise fall back to downloading, which offline retries for minutes before failing.
  """
  manual_dir = Path(manual_dir).expanduser()
  sums = expected_checksums()
  for name in MNIST_FILES:
    path = manual_dir / name
    if not path.is_file():
      raise KmnistError(
          f"MNIST file {path} is missing; put the four original MNIST .gz files ({', '.join(MNIST_FILES)}) "
          f"in --manual_dir, or leave --manual_dir unset to use the copies shipped with kmnist")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sums[name]:
      raise KmnistError(
          f"MNIST file {path} is corrupted or truncated (sha256 {digest[:12]}..., expected {sums[name][:12]}...); "
          f"replace it with the original file, or reinstall kmnist to restore the shipped copy")
  return manual_dir


def load(data_dir=DEFAULT_DATA_DIR, manual_dir=None) -> Datasets:
  """Returns the three splits, preparing the TFDS `mnist` dataset from local files first if needed.

  Decoding TFDS's 70,000 PNG-encoded records takes seconds, so the decoded splits are kept beside them in
  `<data_dir>/mnist/<version>/kmnist_splits.npz` and read from there (in ~0.1 s) on later runs.
  """
  cache = Path(data_dir).expanduser() / "mnist" / TFDS_VERSION / SPLITS_CACHE
  cached = _read_cache(cache)
  if cached:
    return cached
  import tensorflow_datasets as tfds  # Heavy import, deferred so flag errors come back fast.

  builder = tfds.builder(f"mnist:{TFDS_VERSION}", data_dir=os.path.expanduser(data_dir))
  if not builder.is_prepared():
    manual_dir = check_manual_dir(manual_dir or VENDORED_DIR)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  datasets = Datasets(**{name: _read_split(builder, tfds_split) for name, tfds_split in SPLITS.items()})
  if cache.parent.is_dir():  # only beside a really prepared dataset (not under tfds.testing.mock_data)
    _write_cache(cache, datasets)
  return datasets


def _read_cache(path: Path) -> Datasets | None:
  if not path.is_file():
    return None
  try:
    with np.load(path, allow_pickle=False) as arrays:
      splits = {name: Split(images=arrays[f"{name}_images"], labels=arrays[f"{name}_labels"]) for name in SPLITS}
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
    return None  # unreadable: rebuilt from TFDS below
  if not all(s.images.dtype == np.uint8 and s.images.shape[1:] == IMAGE_SHAPE and len(s.images) == len(s.labels)
             for s in splits.values()):
    return None
  return Datasets(**splits)


def _write_cache(path: Path, datasets: Datasets) -> None:
  import io

  from kmnist import files

  buffer = io.BytesIO()
  np.savez(buffer, **{f"{name}_{part}": getattr(getattr(datasets, name), part)
                      for name in SPLITS for part in ("images", "labels")})
  files.write_bytes_atomic(path, buffer.getvalue())


def _read_split(builder, tfds_split: str) -> Split:
  import tensorflow_datasets as tfds

  # Big batches, concatenated: as fast as batch_size=-1, and it also works under tfds.testing.mock_data.
  batches = list(tfds.as_numpy(builder.as_dataset(split=tfds_split, as_supervised=True).batch(10_000)))
  images = np.concatenate([b[0] for b in batches]).reshape((-1,) + IMAGE_SHAPE)
  labels = np.concatenate([b[1] for b in batches]).astype(np.int64)
  return Split(images=images, labels=labels)


def preprocess(images, labels):
  """uint8 pixels -> float32 in [0, 1]; integer labels -> one-hot float32 (the tutorial's y_)."""
  import tensorflow as tf

  return tf.cast(images, tf.float32) / 255.0, tf.one_hot(labels, NUM_CLASSES, dtype=tf.float32)


def batch_indices(num_examples: int, batch_size: int, seed: int, start_step: int = 0):
  """The training order: endless batches of example indices, reshuffled every epoch, a function of `seed` alone.

  Kept apart from the pixels so that a resumed run can skip `start_step` batches without touching them, and so
  that the benchmarks can feed other implementations exactly the same batches.
  """
  import tensorflow as tf

  order = tf.data.Dataset.range(num_examples).shuffle(num_examples, seed=seed, reshuffle_each_iteration=True)
  return order.repeat().batch(batch_size, drop_remainder=True).skip(start_step)


def train_dataset(split: Split, batch_size: int, seed: int, start_step: int = 0, indices=None):
  """Endless shuffled batches of (image, one-hot label) in the order of `batch_indices` (or of `indices`, a
  dataset of index batches)."""
  import tensorflow as tf

  # The split stays in memory as two tensors (the cache); a batch is one gather, not 100 slices. Only the small
  # index pipeline may be rebuilt per iterator (see distribute.replica_batches); the pixels are captured once.
  images, labels = tf.constant(split.images), tf.constant(split.labels)
  ds = batch_indices(len(split), batch_size, seed, start_step) if indices is None else indices
  ds = ds.map(lambda index: preprocess(tf.gather(images, index), tf.gather(labels, index)),
              num_parallel_calls=tf.data.AUTOTUNE)
  return ds.prefetch(tf.data.AUTOTUNE)


def eval_dataset(split: Split, batch_size: int):
  """Every example once, in order, in batches of (image, one-hot label)."""
  import tensorflow as tf

  ds = tf.data.Dataset.from_tensor_slices((split.images, split.labels)).cache()
  return ds.batch(batch_size).map(preprocess, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

