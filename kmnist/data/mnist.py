"""MNIST through tensorflow-datasets, offline from the shipped files, split as in the tutorial.

train = first 55,000 of TFDS `train`, validation = its last 5,000, test = TFDS `test` (10,000).
Arrays stay raw (uint8 images, integer labels) until the input pipeline scales and one-hot encodes
them, so the same arrays feed training, evaluation, export checks and pictures.
"""

import contextlib
import hashlib
import io
import json
import logging as std_logging
import os
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from kmnist.data import mnist_files
from kmnist.data.spec import DEFAULT_DATA_DIR, IMAGE_SHAPE
from kmnist.data.splits import SPLITS, Datasets, Split, digests
from kmnist.util import disk, files
from kmnist.util.errors import KmnistError, one_line

TFDS_VERSION = "3.0.1"  # pinned: the same bytes on every machine
SPLITS_CACHE = "kmnist_splits.npz"
TOTAL_EXAMPLES = 70_000  # what TFDS prepares from the four files: 60,000 + 10,000 digits
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
  with quiet_tfds():
    builder = tfds.builder(f"mnist:{TFDS_VERSION}", data_dir=os.path.expanduser(data_dir))
    if not builder.is_prepared():
      # Checked first: with a file missing, TFDS would fall back to a download that offline
      # retries for minutes.
      manual_dir = mnist_files.check_manual_dir(manual_dir or mnist_files.VENDORED_DIR)
      with disk.reported(version_dir.parent):
        prepare(builder, manual_dir, version_dir, progress)
  try:
    datasets = Datasets(
      **{name: read_split(builder, tfds_split) for name, tfds_split in SPLITS.items()}
    )
  except Exception as e:  # DataLossError, and whatever else a damaged record file makes TF raise
    raise KmnistError(
      f"the prepared MNIST in {version_dir} cannot be read ({one_line(e)}); delete "
      f"{version_dir} and run again to prepare it from the MNIST files"
    ) from None
  if version_dir.is_dir():  # only beside a really prepared dataset (not tfds.testing.mock_data)
    write_cache(cache, datasets)
  return datasets


@contextlib.contextmanager
def quiet_tfds():
  """TFDS's first-run output held back: its progress bars, the two lines it prints to stdout, and
  its warning that the (new, empty) dataset folder has no dataset_info.json."""

  def first_run_warning(record: std_logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Variant folder %s has no")

  std_logging.getLogger("absl").addFilter(first_run_warning)
  tfds.disable_progress_bar()
  try:
    with contextlib.redirect_stdout(io.StringIO()):
      yield
  finally:
    tfds.enable_progress_bar()
    std_logging.getLogger("absl").removeFilter(first_run_warning)


def prepare(builder, manual_dir, version_dir: Path, progress) -> None:
  """TFDS's preparation from the MNIST files, counted example by example into `progress`."""
  label = f"Preparing MNIST in {version_dir} (first run only)"
  shown = progress(label, TOTAL_EXAMPLES) if progress else None
  # Not TFDS's own progress bars: they are several tqdm bars per split, none with the whole count;
  # the examples are counted where TFDS's builder yields them, its hook for a dataset's examples.
  if shown and hasattr(builder, "_generate_examples"):
    generate, count = builder._generate_examples, [0]

    def counted(*args, **kwargs):
      for example in generate(*args, **kwargs):
        count[0] += 1
        shown.update(count[0])
        yield example

    builder._generate_examples = counted
  start = time.monotonic()
  builder.download_and_prepare(
    download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
  )
  if shown:
    shown.finish(f"done in {time.monotonic() - start:.0f} s; later runs start at once")


def read_split(builder, tfds_split: str) -> Split:
  # Big batches, concatenated: as fast as batch_size=-1, and it also works under
  # tfds.testing.mock_data.
  batches = list(
    tfds.as_numpy(builder.as_dataset(split=tfds_split, as_supervised=True).batch(10_000))
  )
  images = np.concatenate([b[0] for b in batches]).reshape((-1,) + IMAGE_SHAPE)
  labels = np.concatenate([b[1] for b in batches]).astype(np.int64)
  return Split(images=images, labels=labels)


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
