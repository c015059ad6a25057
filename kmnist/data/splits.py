"""The three splits as raw arrays, and their fingerprint: what every stage after the data gets.

Arrays stay raw (uint8 images, integer labels) until the input pipeline scales and one-hot encodes
them, so the same arrays feed training, evaluation, export checks and pictures. NumPy only.
"""

import dataclasses
import functools
import hashlib
import json

import numpy as np

SPLITS = {"train": "train[:55000]", "validation": "train[55000:]", "test": "test"}


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
  # The arrays' digests where they are already known (the cache checks them on reading), so the
  # fingerprint does not hash 55 MB again.
  known_digests: dict | None = dataclasses.field(default=None, compare=False, repr=False)

  def arrays(self) -> dict[str, np.ndarray]:
    """{"train_images": ..., "train_labels": ..., ...}: the cache's names."""
    return {
      f"{name}_{part}": getattr(getattr(self, name), part)
      for name in SPLITS
      for part in ("images", "labels")
    }

  @functools.cached_property
  def fingerprint(self) -> str:
    """sha256 of every array: what checkpoints and cluster workers compare to agree on the data."""
    return fingerprint_of(self.known_digests or digests(self.arrays()))


def fingerprint_of(array_digests: dict[str, str]) -> str:
  return hashlib.sha256(json.dumps(array_digests, sort_keys=True).encode("ascii")).hexdigest()


def digests(arrays: dict[str, np.ndarray]) -> dict[str, str]:
  """{name: sha256 of dtype, shape and bytes}."""
  return {
    name: hashlib.sha256(
      f"{a.dtype.str}{a.shape}".encode() + np.ascontiguousarray(a).data
    ).hexdigest()
    for name, a in arrays.items()
  }
