"""TFDS's side of kmnist.data.mnist: the `mnist` dataset prepared from the MNIST files, decoded.

Only the first run (or one whose decoded-split cache is gone) needs it, so kmnist.data.mnist
imports this module, and with it tensorflow_datasets, only then.
"""

import contextlib
import io
import logging as std_logging
import os
import time
from pathlib import Path

import numpy as np
import PIL.Image
import tensorflow as tf
import tensorflow_datasets as tfds

from kmnist.data import mnist_files
from kmnist.data.spec import IMAGE_SHAPE, TFDS_VERSION
from kmnist.data.splits import SPLITS, Datasets, Split
from kmnist.util import disk
from kmnist.util.errors import KmnistError, one_line

TOTAL_EXAMPLES = 70_000  # what TFDS prepares from the four files: 60,000 + 10,000 digits


def decode(data_dir, manual_dir, version_dir: Path, progress) -> Datasets:
  """The three splits from TFDS's `mnist`, prepared first from the MNIST files if need be."""
  with quiet_tfds():
    builder = tfds.builder(f"mnist:{TFDS_VERSION}", data_dir=os.path.expanduser(data_dir))
    pixels = {}  # PNG bytes handed to TFDS -> the digit's pixels, when prepared here
    if not builder.is_prepared():
      # Checked first: with a file missing, TFDS would fall back to a download that offline
      # retries for minutes.
      manual_dir = mnist_files.check_manual_dir(manual_dir or mnist_files.VENDORED_DIR)
      with disk.reported(version_dir.parent):
        pixels = prepare(builder, manual_dir, version_dir, progress)
  try:
    if pixels:
      return read_prepared_here(builder, pixels)
    return Datasets(
      **{name: read_split(builder, tfds_split) for name, tfds_split in SPLITS.items()}
    )
  except Exception as e:  # DataLossError, and whatever else a damaged record file makes TF raise
    raise KmnistError(
      f"the prepared MNIST in {version_dir} cannot be read ({one_line(e)}); delete "
      f"{version_dir} and run again to prepare it from the MNIST files"
    ) from None


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


def prepare(builder, manual_dir, version_dir: Path, progress) -> dict:
  """TFDS's preparation from the MNIST files, counted example by example into `progress`. Returns
  {the PNG bytes TFDS got: the digit's pixels}."""
  label = f"Preparing MNIST in {version_dir} (first run only)"
  shown = progress(label, TOTAL_EXAMPLES) if progress else None
  # The examples pass through here where TFDS's builder yields them, its hook for a dataset's
  # examples: counted for the display (TFDS's own bars are several per split, none with the whole
  # count), and each picture handed to TFDS as PNG bytes made by Pillow, one of the inputs TFDS's
  # Image feature takes: TensorFlow's encoder, called once per digit, took half the preparation.
  pixels = {}
  if hasattr(builder, "_generate_examples"):
    generate, count = builder._generate_examples, [0]

    def encoded(*args, **kwargs):
      for key, example in generate(*args, **kwargs):
        count[0] += 1
        if shown:
          shown.update(count[0])
        png = png_bytes(example["image"])
        pixels[png] = np.asarray(example["image"], np.uint8).reshape(IMAGE_SHAPE)
        yield key, {**example, "image": png}

    builder._generate_examples = encoded
  start = time.monotonic()
  builder.download_and_prepare(
    download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
  )
  if shown:
    shown.finish(f"done in {time.monotonic() - start:.0f} s; later runs start at once")
  return pixels


def png_bytes(image) -> bytes:
  """A digit [28, 28, 1] (or [28, 28]) as an 8-bit gray PNG, as TFDS would store it. zlib's level
  1: 3 % larger than the default level 6 on MNIST's digits, in two thirds of the time."""
  buffer = io.BytesIO()
  gray = PIL.Image.fromarray(np.asarray(image, np.uint8).reshape(IMAGE_SHAPE), "L")
  gray.save(buffer, "png", compress_level=1)
  return buffer.getvalue()


def read_prepared_here(builder, pixels: dict) -> Datasets:
  """The splits of a dataset this process has just prepared, without decoding a picture: TFDS's
  records, in its order, hold the PNG bytes `prepare` handed it, each mapped back to its pixels
  (decoding 70,000 PNGs took seconds of the first run)."""
  features = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
  }
  whole = {}
  for name in {spec.split("[")[0] for spec in SPLITS.values()}:
    files = [os.fspath(path) for path in builder.info.splits[name].filepaths]
    records = tf.data.TFRecordDataset(files).batch(10_000)
    batches = list(tfds.as_numpy(records.map(lambda r: tf.io.parse_example(r, features))))
    images = [pixels[png] for batch in batches for png in batch["image"]]
    labels = np.concatenate([batch["label"] for batch in batches]).astype(np.int64)
    whole[name] = Split(images=np.stack(images), labels=labels)
  return Datasets(**{name: sliced(whole, spec) for name, spec in SPLITS.items()})


def sliced(whole: dict, spec: str) -> Split:
  """The examples a split spec such as `train[:55000]` names, from the whole splits."""
  name, _, bounds = spec.partition("[")
  start, _, stop = bounds.rstrip("]").partition(":")
  part = slice(int(start) if start else None, int(stop) if stop else None)
  return Split(images=whole[name].images[part], labels=whole[name].labels[part])


def read_split(builder, tfds_split: str) -> Split:
  # Big batches, concatenated: as fast as batch_size=-1, and it also works under
  # tfds.testing.mock_data.
  batches = list(
    tfds.as_numpy(builder.as_dataset(split=tfds_split, as_supervised=True).batch(10_000))
  )
  images = np.concatenate([b[0] for b in batches]).reshape((-1,) + IMAGE_SHAPE)
  labels = np.concatenate([b[1] for b in batches]).astype(np.int64)
  return Split(images=images, labels=labels)
