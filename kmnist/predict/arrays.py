"""A user's .npy file of digits, read a chunk of digits at a time: any file, in bounded memory.

`np.load` trusts the header: a file of a hundred bytes can claim terabytes, and the whole array is
read at once. Here the header is read alone and checked against the file's size before any pixel
is read; then CHUNK digits are read at a time, and each digit is checked (range, blank, noise) on
its own, so one bad digit is named while the others are classified.

Digits are uint8 pixels 0-255 or floats in [0, 1], shaped [28, 28], [N, 28, 28], [784] or
[N, 784].
"""

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from kmnist.data.spec import IMAGE_SHAPE
from kmnist.predict import images
from kmnist.util.errors import KmnistError

PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
CHUNK = 1000  # digits per read: 6 MB of float64 pixels at most
# A Fortran-ordered array interleaves its digits, so it can only be read whole: up to this size.
MAX_FORTRAN_BYTES = 64 * 2**20
MAX_DIGIT_ERRORS = 10  # per file; the rest are counted in one line
SHAPES = "expected [28, 28], [N, 28, 28], [784] or [N, 784]"


@dataclasses.dataclass(frozen=True)
class NpyDigits:
  """A checked .npy header: where the digits are and how they are stored."""

  path: Path
  dtype: np.dtype
  count: int
  offset: int
  fortran: bool
  shape: tuple

  def names(self, start: int, stop: int) -> list[str]:
    if self.count == 1:
      return [str(self.path)]
    return [f"{self.path}[{i}]" for i in range(start, stop)]

  def chunks(self) -> Iterator[tuple[int, np.ndarray]]:
    """(index of the first digit, its digits [n, 28, 28] as stored), CHUNK digits at a time."""
    digit_bytes = PIXELS * self.dtype.itemsize
    with open(self.path, "rb") as f:
      if self.fortran:  # small (checked in open_npy): read whole, then cut
        f.seek(self.offset)
        whole = np.frombuffer(f.read(), self.dtype).reshape(self.shape, order="F")
        digits = whole.reshape((self.count,) + IMAGE_SHAPE)
        for start in range(0, self.count, CHUNK):
          yield start, digits[start : start + CHUNK]
        return
      for start in range(0, self.count, CHUNK):
        n = min(CHUNK, self.count - start)
        f.seek(self.offset + start * digit_bytes)
        data = f.read(n * digit_bytes)
        if len(data) != n * digit_bytes:  # it shrank since its size was checked
          raise KmnistError(f"{self.path}: the file changed while it was read; try again")
        yield start, np.frombuffer(data, self.dtype).reshape((n,) + IMAGE_SHAPE)


def open_npy(path) -> NpyDigits:
  """Reads and checks the header of a .npy of digits; KmnistError naming the file if it is not one
  (nothing of the array is read)."""
  path = Path(path)
  if not path.is_file():
    raise KmnistError(f"{path}: no such file")
  try:
    with open(path, "rb") as f:
      version = np.lib.format.read_magic(f)
      # Version 3 differs from 2 only in the header's text encoding (utf-8 for field names).
      read_header = {(1, 0): np.lib.format.read_array_header_1_0}.get(
        version, np.lib.format.read_array_header_2_0
      )
      shape, fortran, dtype = read_header(f)
      offset = f.tell()
  except Exception as e:  # any bytes: ValueError, EOFError, SyntaxError from the header's literal
    raise KmnistError(
      f"{path}: not a readable .npy array ({e.__class__.__name__}); save one with numpy.save"
    ) from None
  if dtype.kind not in "iuf" or dtype.fields or dtype.subdtype:
    raise KmnistError(f"{path}: {dtype} pixels must be integers 0-255 or floats in [0, 1]")
  count = digit_count(shape)
  if count is None:
    raise KmnistError(f"{path}: array of shape {shape} is not digits; {SHAPES}")
  expected, actual = count * PIXELS * dtype.itemsize, os.path.getsize(path) - offset
  if actual != expected:
    raise KmnistError(
      f"{path}: its header says {count:,} digits of {dtype} ({expected:,} bytes) but "
      f"{actual:,} bytes follow it; the file is truncated or not written by numpy.save"
    )
  if fortran and count > 1 and expected > MAX_FORTRAN_BYTES:
    raise KmnistError(
      f"{path}: a Fortran-ordered array is read whole, and this one is over "
      f"{MAX_FORTRAN_BYTES:,} bytes; save it with numpy.save(path, numpy.ascontiguousarray(a))"
    )
  return NpyDigits(path, dtype, count, offset, fortran, shape)


def digit_count(shape: tuple) -> int | None:
  """How many digits an array of `shape` holds, or None if it is not digits (or holds none)."""
  if shape in (IMAGE_SHAPE, (PIXELS,)):
    return 1
  if len(shape) == 3 and shape[1:] == IMAGE_SHAPE or len(shape) == 2 and shape[1] == PIXELS:
    return shape[0] or None
  return None


def read_digits(path) -> Iterator[tuple[list[str], np.ndarray, list[str]]]:
  """(names, uint8 digits [n, 28, 28], one-line errors) a chunk at a time; every digit is either
  returned or named in an error (after MAX_DIGIT_ERRORS of them, counted in one last line)."""
  npy = open_npy(path)
  refused = 0
  for start, raw in npy.chunks():
    names = npy.names(start, start + len(raw))
    pixels, problems = to_pixels(raw)
    problems = [p or q for p, q in zip(problems, images.ink_problems(pixels), strict=True)]
    errors = []
    for name, problem in zip(names, problems, strict=True):
      if problem:
        refused += 1
        if refused <= MAX_DIGIT_ERRORS:
          errors.append(f"{name}: {problem}")
    good = [i for i, problem in enumerate(problems) if not problem]
    yield [names[i] for i in good], pixels[good], errors
  if refused > MAX_DIGIT_ERRORS:
    more = refused - MAX_DIGIT_ERRORS
    yield [], np.zeros((0,) + IMAGE_SHAPE, np.uint8), [f"{path}: {more:,} more digits refused"]


def to_pixels(raw: np.ndarray) -> tuple[np.ndarray, list[str | None]]:
  """uint8 pixels of digits stored as integers 0-255 or floats in [0, 1], and for each digit why
  it cannot be one (out of range, not a number), or None."""
  if raw.dtype.kind == "f":
    with np.errstate(invalid="ignore"):
      ok = np.isfinite(raw).all(axis=(1, 2)) & (raw.min(axis=(1, 2)) >= 0)
      ok &= raw.max(axis=(1, 2)) <= 1
      scaled = raw * 255  # one copy, in the file's own float type
    scaled[~ok] = 0
    pixels = np.round(scaled, out=scaled).astype(np.uint8)
    wrong = "float pixels must be in [0, 1] (the tutorial's x); or save uint8 pixels 0-255"
  else:
    ok = (raw.min(axis=(1, 2)) >= 0) & (raw.max(axis=(1, 2)) <= 255)
    pixels = np.where(ok[:, None, None], raw, 0).astype(np.uint8)
    wrong = f"{raw.dtype} pixels must be integers 0-255 or floats in [0, 1]"
  return pixels, [None if good else wrong for good in ok.tolist()]
