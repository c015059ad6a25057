"""MNIST through tensorflow-datasets, offline from the shipped files, split as in the tutorial.

train = first 55,000 of TFDS `train`, validation = its last 5,000, test = TFDS `test` (10,000).
Arrays stay raw (uint8 images, integer labels) until the input pipeline scales and one-hot encodes
them, so the same arrays feed training, evaluation, export checks and pictures.
"""

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from absl import logging

from kmnist.data.spec import DEFAULT_DATA_DIR, TFDS_VERSION
from kmnist.data.splits import SPLITS, Datasets, Split, digests
from kmnist.util import files
from kmnist.util.errors import one_line

SPLITS_CACHE = "kmnist_splits.npz"
CACHE_FORMAT = 2  # 2: with the identity record (what it was decoded from, a sha256 per array)


def load(
  data_dir=DEFAULT_DATA_DIR,
  manual_dir=None,
  log: Callable[[str], None] = logging.info,
  progress=None,
):
  """Returns the three splits, preparing the TFDS `mnist` dataset from local files first if needed.

  Decoding TFDS's 70,000 PNG-encoded records takes seconds, so the decoded splits are kept beside
  them in `<data_dir>/mnist/<version>/kmnist_splits.npz` and read from there (in ~0.1 s) on later
  runs. A cache that does not match what it says it holds, or TFDS's files beside it, is rebuilt.
  `progress(label, total)`, if given, makes the display of the first run's preparation
  (kmnist.util.console.Progress): TFDS's own bars and prints are held back.
  """
  version_dir = Path(data_dir).expanduser() / "mnist" / TFDS_VERSION
  cache = version_dir / SPLITS_CACHE
  cached, problem = read_cache(cache)
  if cached:
    return cached
  if problem:
    log(f"The decoded-split cache {cache} {problem}; rebuilding it from TFDS's files.")
  # Imported here, where the cache cannot serve: every run but the first is spared TFDS's import.
  from kmnist.data import tfds_source  # noqa: PLC0415

  datasets = tfds_source.decode(data_dir, manual_dir, version_dir, progress)
  if version_dir.is_dir():  # only beside a really prepared dataset (not tfds.testing.mock_data)
    write_cache(cache, datasets)
  return datasets


def source_identity(version_dir: Path) -> str | None:
  """What the cache was decoded from: TFDS's dataset_info.json and its record files' sizes."""
  info = version_dir / "dataset_info.json"
  if not info.is_file():
    return None
  records = sorted((p.name, p.stat().st_size) for p in version_dir.glob("mnist-*.tfrecord*"))
  return hashlib.sha256(info.read_bytes() + json.dumps(records).encode()).hexdigest()


def identity(path: Path, arrays: dict[str, np.ndarray]) -> dict:
  return {
    "format": CACHE_FORMAT,
    "dataset": f"mnist:{TFDS_VERSION}",
    "splits": SPLITS,
    "source": source_identity(path.parent),
    "sha256": digests(arrays),
  }


def read_cache(path: Path) -> tuple[Datasets | None, str | None]:
  """(the cached splits, None), or (None, why not) for a cache that is not what it says it is;
  (None, None) when there is none."""
  if not path.is_file():
    return None, None
  try:
    with np.load(path, allow_pickle=False) as npz:
      arrays = {name: npz[name] for name in npz.files}
    if "identity" not in arrays:
      return None, "was written by another version of kmnist"
    recorded = json.loads(str(arrays.pop("identity")))
    if not isinstance(recorded, dict):
      raise ValueError("its identity record is not a JSON object")
  except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
    return None, f"is unreadable ({one_line(e)})"
  expected = identity(path, arrays)
  for key, wrong in (
    ("format", "was written by another version of kmnist"),
    ("dataset", "holds another dataset version"),
    ("splits", "holds other splits"),
    ("source", "was decoded from other TFDS files than those beside it"),
    ("sha256", "does not hold the arrays it was written with (edited or truncated)"),
  ):
    if recorded.get(key) != expected[key]:
      return None, wrong
  splits = {name: Split(arrays[f"{name}_images"], arrays[f"{name}_labels"]) for name in SPLITS}
  return Datasets(**splits, known_digests=expected["sha256"]), None


def write_cache(path: Path, datasets: Datasets) -> None:
  arrays = datasets.arrays()
  buffer = io.BytesIO()
  np.savez(buffer, identity=np.array(json.dumps(identity(path, arrays))), **arrays)
  files.write_bytes_atomic(path, buffer.getvalue())
