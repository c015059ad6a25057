"""A user's picture of a digit made into what the model was trained on: 28x28, white on black.

MNIST's digits were made by fitting each digit into a 20x20 box (aspect ratio kept, anti-aliased)
and centring its centre of mass in a 28x28 field (LeCun et al.). Pictures that are already 28x28 are
used as they are (only inverted when they are dark-on-light); anything larger or in colour is
brought to that form the same way.
"""

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from kmnist.data import IMAGE_SHAPE
from kmnist.errors import KmnistError

MIN_SIDE = 8  # Below this a picture holds too few pixels to resize into a digit.
MAX_PIXELS = (
    4096 * 4096
)  # a digit needs far fewer; refused before decoding (a PNG can claim gigapixels)


def load_png(path) -> np.ndarray:
  """Reads an image file (PNG, or anything Pillow opens) as one MNIST-style uint8 [28, 28] digit."""
  path = Path(path)
  if not path.is_file():
    raise KmnistError(f"{path}: no such file")
  return to_mnist(decode_picture(path, str(path)), str(path))


def decode_picture(source, name: str) -> np.ndarray:
  """A picture (a path or a binary file object) as uint8 grayscale [H, W], transparency as paper.

  Raises KmnistError naming `name` for anything Pillow cannot read, and for pictures of more than
  MAX_PIXELS pixels before decoding them (a few bytes of PNG can claim gigapixels).
  """
  try:
    with Image.open(source) as image:
      if image.width * image.height > MAX_PIXELS:
        raise KmnistError(
            f"{name}: the picture is {image.width}x{image.height} pixels; give at most "
            f"{MAX_PIXELS:,} pixels"
        )
      image.load()
      if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Transparent pixels count as paper (white), as when the picture is shown on a page.
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
      return np.asarray(image.convert("L"), dtype=np.uint8)
  except (UnidentifiedImageError, OSError) as e:
    raise KmnistError(
        f"{name}: not a readable image ({e.__class__.__name__}); give a PNG of one digit"
    ) from None


def to_mnist(gray: np.ndarray, name: str = "image") -> np.ndarray:
  """uint8 grayscale [H, W] -> uint8 [28, 28], white digit on black, centred as MNIST's."""
  if min(gray.shape) < MIN_SIDE:
    raise KmnistError(
        f"{name}: {gray.shape[1]}x{gray.shape[0]} pixels is too small to hold a digit; "
        f"give at least {MIN_SIDE}x{MIN_SIDE} (28x28 is MNIST's size)"
    )
  if _is_dark_on_light(gray):
    gray = 255 - gray
  if gray.shape == IMAGE_SHAPE:
    return gray
  return _fit_and_centre(gray, name)


def _is_dark_on_light(gray: np.ndarray) -> bool:
  border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
  return float(np.median(border)) > 127


def _fit_and_centre(gray: np.ndarray, name: str) -> np.ndarray:
  ink = gray > 0.2 * gray.max() if gray.max() > 0 else np.zeros_like(gray, bool)
  if not ink.any():
    raise KmnistError(f"{name}: the picture is blank; give a picture of one digit")
  rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
  digit = gray[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
  scale = 20.0 / max(digit.shape)
  size = (max(1, round(digit.shape[1] * scale)), max(1, round(digit.shape[0] * scale)))
  digit = np.asarray(Image.fromarray(digit).resize(size, Image.Resampling.LANCZOS), np.float32)
  # Place the digit so that its centre of mass lands on pixel (14, 14), where MNIST's digits have
  # theirs on average (measured on the test set: 14.00, 14.02), staying inside the field.
  total = digit.sum()
  com_y = (digit.sum(1) * np.arange(digit.shape[0])).sum() / total
  com_x = (digit.sum(0) * np.arange(digit.shape[1])).sum() / total
  top = int(np.clip(round(IMAGE_SHAPE[0] / 2 - com_y), 0, IMAGE_SHAPE[0] - digit.shape[0]))
  left = int(np.clip(round(IMAGE_SHAPE[1] / 2 - com_x), 0, IMAGE_SHAPE[1] - digit.shape[1]))
  field = np.zeros(IMAGE_SHAPE, np.float32)
  field[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
  return np.clip(np.round(field), 0, 255).astype(np.uint8)


def load_npy(path) -> np.ndarray:
  """Reads a `.npy` of digits: uint8 pixels 0-255 or floats in [0, 1], shaped [28, 28],
  [N, 28, 28], [784] or [N, 784]."""
  path = Path(path)
  if not path.is_file():
    raise KmnistError(f"{path}: no such file")
  try:
    array = np.load(path, allow_pickle=False)
  except (ValueError, OSError) as e:
    raise KmnistError(
        f"{path}: not a readable .npy array ({e}); save one with numpy.save"
    ) from None
  pixels = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
  if array.shape in (IMAGE_SHAPE, (pixels,)):
    array = array[None]
  if array.ndim == 2 and array.shape[1] == pixels:
    array = array.reshape((-1,) + IMAGE_SHAPE)
  if array.ndim != 3 or array.shape[1:] != IMAGE_SHAPE or len(array) == 0:
    raise KmnistError(
        f"{path}: array of shape {array.shape} is not digits; "
        f"expected [28, 28], [N, 28, 28], [784] or [N, 784]"
    )
  if np.issubdtype(array.dtype, np.floating):
    if not (np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1):
      raise KmnistError(
          f"{path}: float pixels must be in [0, 1] (the tutorial's x); or save uint8 pixels 0-255"
      )
    return np.round(array * 255).astype(np.uint8)
  if np.issubdtype(array.dtype, np.integer) and array.min() >= 0 and array.max() <= 255:
    return array.astype(np.uint8)
  raise KmnistError(f"{path}: {array.dtype} pixels must be integers 0-255 or floats in [0, 1]")
