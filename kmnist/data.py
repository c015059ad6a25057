"""MNIST through tensorflow-datasets, offline from the shipped files, split as in the tutorial.

train = first 55,000 of TFDS `train`, validation = its last 5,000, test = TFDS `test` (10,000).
Arrays stay raw (uint8 images, integer labels) until the input pipeline scales and one-hot encodes
them, so the same arrays feed training, evaluation, export checks and pictures.
"""

import dataclasses
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from kmnist import files, mnist_files
from kmnist.config import DEFAULT_DATA_DIR

NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28)
SPLITS = {"train": "train[:55000]", "validation": "train[55000:]", "test": "test"}
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


def load(data_dir=DEFAULT_DATA_DIR, manual_dir=None) -> Datasets:
  """Returns the three splits, preparing the TFDS `mnist` dataset from local files first if needed.

  Decoding TFDS's 70,000 PNG-encoded records takes seconds, so the decoded splits are kept beside
  them in `<data_dir>/mnist/<version>/kmnist_splits.npz` and read from there (in ~0.1 s) on later
  runs.
  """
  cache = Path(data_dir).expanduser() / "mnist" / TFDS_VERSION / SPLITS_CACHE
  cached = _read_cache(cache)
  if cached:
    return cached
  builder = tfds.builder(f"mnist:{TFDS_VERSION}", data_dir=os.path.expanduser(data_dir))
  if not builder.is_prepared():
    # Checked first: with a file missing, TFDS would fall back to a download that offline retries
    # for minutes.
    manual_dir = mnist_files.check_manual_dir(manual_dir or mnist_files.VENDORED_DIR)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    )
  datasets = Datasets(
      **{name: read_split(builder, tfds_split) for name, tfds_split in SPLITS.items()}
  )
  if (
      cache.parent.is_dir()
  ):  # only beside a really prepared dataset (not under tfds.testing.mock_data)
    write_cache(cache, datasets)
  return datasets


def read_split(builder, tfds_split: str) -> Split:
  # Big batches, concatenated: as fast as batch_size=-1, and it also works under
  # tfds.testing.mock_data.
  batches = list(
      tfds.as_numpy(builder.as_dataset(split=tfds_split, as_supervised=True).batch(10_000))
  )
  images = np.concatenate([b[0] for b in batches]).reshape((-1,) + IMAGE_SHAPE)
  labels = np.concatenate([b[1] for b in batches]).astype(np.int64)
  return Split(images=images, labels=labels)


def _read_cache(path: Path) -> Datasets | None:
  if not path.is_file():
    return None
  try:
    with np.load(path, allow_pickle=False) as arrays:
      splits = {
          name: Split(images=arrays[f"{name}_images"], labels=arrays[f"{name}_labels"])
          for name in SPLITS
      }
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
    return None  # unreadable: rebuilt from TFDS
  if not all(
      s.images.dtype == np.uint8
      and s.images.shape[1:] == IMAGE_SHAPE
      and len(s.images) == len(s.labels)
      for s in splits.values()
  ):
    return None
  return Datasets(**splits)


def write_cache(path: Path, datasets: Datasets) -> None:
  buffer = io.BytesIO()
  np.savez(
      buffer,
      **{
          f"{name}_{part}": getattr(getattr(datasets, name), part)
          for name in SPLITS
          for part in ("images", "labels")
      },
  )
  files.write_bytes_atomic(path, buffer.getvalue())
