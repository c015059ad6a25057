"""A user's picture of a digit made into what the model was trained on: 28x28, white on black.

MNIST's digits were made by fitting each digit into a 20x20 box (aspect ratio kept, anti-aliased)
and centring its centre of mass in a 28x28 field (LeCun et al.). Pictures that are already 28x28 are
used as they are (only inverted when they are dark-on-light); anything larger or in colour is
brought to that form the same way.

Any bytes may arrive here (kmnist-predict's files, the server's drawings): whatever Pillow cannot
read, or reads as something no digit can be (blank, noise, too small, too many pixels to decode),
is a KmnistError naming the input, never another exception. `check_ink` is the one blank-and-noise
check, for pictures here and for arrays in kmnist.predict.arrays.
"""

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from kmnist.data.spec import IMAGE_SHAPE
from kmnist.util.errors import KmnistError

MIN_SIDE = 8  # Below this a picture holds too few pixels to resize into a digit.
# A digit needs far fewer; refused before decoding (a few bytes of PNG can claim gigapixels). The
# largest picture decoded costs ~12 bytes a pixel at its peak (RGBA, composited, gray): ~200 MB.
MAX_PIXELS = 4096 * 4096
# Blank: no pixel differs from the darkest by this many levels (of 255).
BLANK_LEVELS = 16
# Noise: neighbouring pixels correlate less than this in every direction. Handwriting's strokes are
# several pixels wide: MNIST's 70,000 digits correlate 0.55 or more, pixel noise of any kind 0.1 or
# less (BUILD_NOTES.md, "Pictures, console, predict").
NOISE_CORRELATION = 0.3
ROWS_PER_CHUNK = 128  # the correlation is summed over row blocks: ~25 MB on the biggest picture
HIGH_DEPTH_MODES = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")


def load_png(path) -> np.ndarray:
  """Reads an image file (PNG, or anything Pillow opens) as one MNIST-style uint8 [28, 28] digit."""
  path = Path(path)
  if not path.is_file():
    raise KmnistError(f"{path}: no such file")
  return to_mnist(decode_picture(path, str(path)), str(path))


def decode_picture(source, name: str) -> np.ndarray:
  """A picture (a path or a binary file object) as uint8 grayscale [H, W], transparency as paper.

  Raises KmnistError naming `name` for anything Pillow cannot read, and for pictures of more than
  MAX_PIXELS pixels before decoding them.
  """
  try:
    with warnings.catch_warnings():
      # Pillow warns about what it meets in odd files (corrupt EXIF, deprecated formats, over 89 M
      # pixels): the one line kmnist writes about a file is the one that counts.
      warnings.simplefilter("ignore")
      with Image.open(source) as image:
        if image.width * image.height > MAX_PIXELS:
          raise KmnistError(
            f"{name}: the picture is {image.width}x{image.height} pixels; give at most "
            f"{MAX_PIXELS:,} pixels"
          )
        image.load()
        return grayscale(image, name)
  except KmnistError:
    raise
  except Image.DecompressionBombError:
    raise KmnistError(
      f"{name}: the picture claims over {MAX_PIXELS:,} pixels; give a smaller one"
    ) from None
  # Pillow's decoders meet bytes of any content: besides OSError they raise SyntaxError, ValueError,
  # struct.error, EOFError, IndexError... all of which mean "not a picture it can read".
  except Exception as e:
    raise KmnistError(
      f"{name}: not a readable image ({e.__class__.__name__}); give a PNG of one digit"
    ) from None


def grayscale(image: Image.Image, name: str) -> np.ndarray:
  """Any Pillow mode as uint8 gray: 16-bit and float pixels scaled, colour spaces by lightness."""
  if image.mode in HIGH_DEPTH_MODES:
    return _scaled_to_bytes(np.asarray(image), name)
  if image.mode in ("LAB", "HSV"):  # no conversion to L exists; lightness / value is the gray
    return np.asarray(image.getchannel("L" if image.mode == "LAB" else "V"), np.uint8)
  if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
    # Transparent pixels count as paper (white), as when the picture is shown on a page.
    background = Image.new("RGBA", image.size, (255, 255, 255, 255))
    image = Image.alpha_composite(background, image.convert("RGBA"))
  return np.asarray(image.convert("L"), dtype=np.uint8)


def _scaled_to_bytes(values: np.ndarray, name: str) -> np.ndarray:
  """16-bit, 32-bit and float pixels to 0-255: kept if they already are, 16-bit ones divided by
  257, anything else stretched from its own range."""
  values = values.astype(np.float64)
  if not np.isfinite(values).all():
    raise KmnistError(f"{name}: the picture holds pixel values that are not numbers; give a PNG")
  low, high = values.min(), values.max()
  if low < 0 or high > 65535:
    values = (values - low) * (255 / (high - low)) if high > low else values * 0
  elif high > 255:
    values = values / 257
  return np.round(values).astype(np.uint8)


def check_ink(gray: np.ndarray, name: str) -> None:
  """Refuses a blank picture, and one of noise only, naming `name`: the same words for pictures
  and arrays. `gray` is uint8 [H, W] as the user gave it (before any resizing, which would smooth
  noise into something stroke-like)."""
  problem = ink_problems(gray[None])[0]
  if problem:
    raise KmnistError(f"{name}: {problem}")


def ink_problems(grays: np.ndarray) -> list[str | None]:
  """For each uint8 [H, W] picture of `grays` [N, H, W]: why it is no digit (and what to give
  instead), or None."""
  low, high = grays.min(axis=(1, 2)), grays.max(axis=(1, 2))
  correlations = neighbour_correlations(grays)
  problems = []
  for lo, hi, correlation in zip(low.tolist(), high.tolist(), correlations.tolist(), strict=True):
    if hi - lo < BLANK_LEVELS:
      problems.append(
        f"the picture is blank (every pixel within {BLANK_LEVELS} levels of {lo}); give a "
        "picture of one digit"
      )
    elif correlation < NOISE_CORRELATION:
      problems.append(
        f"the picture is noise, not a digit (neighbouring pixels correlate {correlation:.2f}; "
        f"handwriting {NOISE_CORRELATION} or more); give a picture of one digit"
      )
    else:
      problems.append(None)
  return problems


def neighbour_correlations(grays: np.ndarray) -> np.ndarray:
  """For each picture of `grays` [N, H, W], the largest correlation between a pixel and its
  neighbour over four directions (right, down, both diagonals): strokes of any slant correlate
  along themselves, noise nowhere. Summed over blocks of rows, so a big picture costs little."""
  count, height, width = grays.shape
  sums = np.zeros((4, 6, count))  # per direction: n, Σa, Σb, Σa², Σb², Σab
  for top in range(0, height, ROWS_PER_CHUNK):
    block = grays[:, top : top + ROWS_PER_CHUNK + 1].astype(np.float64)  # + the next block's row
    own = min(ROWS_PER_CHUNK, height - top)
    for k, (dy, dx) in enumerate(((0, 1), (1, 0), (1, 1), (1, -1))):
      rows = own - dy if top + own == height else own  # the last row has none below it
      a = block[:, :rows, max(0, -dx) : width - max(0, dx)]
      b = block[:, dy : dy + rows, max(0, dx) : width + min(0, dx)]
      sums[k, 0] += a.shape[1] * a.shape[2]
      sums[k, 1] += a.sum(axis=(1, 2))
      sums[k, 2] += b.sum(axis=(1, 2))
      for i, (x, y) in enumerate(((a, a), (b, b), (a, b)), start=3):  # one product at a time
        sums[k, i] += np.einsum("nij,nij->n", x, y)
  n, sa, sb, saa, sbb, sab = sums.transpose(1, 0, 2)
  variance = (n * saa - sa * sa) * (n * sbb - sb * sb)
  with np.errstate(divide="ignore", invalid="ignore"):
    correlation = np.where(variance > 0, (n * sab - sa * sb) / np.sqrt(variance), -1.0)
  return correlation.max(axis=0)


def to_mnist(gray: np.ndarray, name: str = "image") -> np.ndarray:
  """uint8 grayscale [H, W] -> uint8 [28, 28], white digit on black, centred as MNIST's."""
  if min(gray.shape) < MIN_SIDE:
    raise KmnistError(
      f"{name}: {gray.shape[1]}x{gray.shape[0]} pixels is too small to hold a digit; "
      f"give at least {MIN_SIDE}x{MIN_SIDE} (28x28 is MNIST's size)"
    )
  check_ink(gray, name)
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
  if not total > 0:  # the resized digit vanished (a hairline stroke): nothing left to centre
    raise KmnistError(f"{name}: the picture is blank; give a picture of one digit")
  com_y = (digit.sum(1) * np.arange(digit.shape[0])).sum() / total
  com_x = (digit.sum(0) * np.arange(digit.shape[1])).sum() / total
  top = int(np.clip(round(IMAGE_SHAPE[0] / 2 - com_y), 0, IMAGE_SHAPE[0] - digit.shape[0]))
  left = int(np.clip(round(IMAGE_SHAPE[1] / 2 - com_x), 0, IMAGE_SHAPE[1] - digit.shape[1]))
  field = np.zeros(IMAGE_SHAPE, np.float32)
  field[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
  return np.clip(np.round(field), 0, 255).astype(np.uint8)
