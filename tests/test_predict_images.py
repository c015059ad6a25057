"""Users' pictures turned into MNIST digits: fitted, centred and inverted as MNIST's were; any
bytes that are not a picture of a digit (unreadable, lying, blank, noise) named in one line.

The fuzzing tests generate their inputs with Hypothesis (fixed budget, derandomized: conftest.py).
"""

import io
import struct
import warnings
import zlib

import byte_edits
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from kmnist.predict import images
from kmnist.util.errors import KmnistError


def a_digit() -> np.ndarray:
  digit = np.zeros((28, 28), np.uint8)
  digit[6:22, 12:16] = 255  # a "1": a white bar on black
  return digit


def test_mnist_sized_png_is_used_as_is(tmp_path):
  digit = a_digit()
  Image.fromarray(digit).save(tmp_path / "one.png")
  np.testing.assert_array_equal(images.load_png(tmp_path / "one.png"), digit)


def test_dark_on_light_is_inverted(tmp_path):
  Image.fromarray(255 - a_digit()).save(tmp_path / "paper.png")
  np.testing.assert_array_equal(images.load_png(tmp_path / "paper.png"), a_digit())


def test_large_colour_picture_is_fitted_into_20x20_and_centred(tmp_path):
  big = np.full((300, 200, 3), 250, np.uint8)  # white paper, a dark bar off-centre
  big[20:260, 10:50] = (20, 30, 40)
  Image.fromarray(big).save(tmp_path / "photo.png")
  digit = images.load_png(tmp_path / "photo.png")
  assert digit.shape == (28, 28) and digit.dtype == np.uint8
  rows = np.flatnonzero(digit.max(1) > 50)
  assert rows[-1] - rows[0] + 1 == 20  # the longer side fills the 20-pixel box
  mass = digit.astype(float)
  com = (mass.sum(1) @ np.arange(28) / mass.sum(), mass.sum(0) @ np.arange(28) / mass.sum())
  assert abs(com[0] - 14) <= 0.5 and abs(com[1] - 14) <= 0.5


def test_transparent_background_counts_as_paper(tmp_path):
  rgba = np.zeros((56, 56, 4), np.uint8)
  rgba[10:46, 24:32] = (0, 0, 0, 255)  # opaque black ink on a transparent sheet
  Image.fromarray(rgba, "RGBA").save(tmp_path / "ink.png")
  digit = images.load_png(tmp_path / "ink.png")
  assert digit.max() > 200 and digit[0, 0] == 0  # white ink, black background


@pytest.mark.parametrize(
  "content, message",
  [
    (b"not a picture", "not a readable image"),
    (None, "no such file"),
  ],
)
def test_unreadable_files_are_named(tmp_path, content, message):
  path = tmp_path / "x.png"
  if content is not None:
    path.write_bytes(content)
  with pytest.raises(KmnistError, match=f"x.png: {message}"):
    images.load_png(path)


def test_blank_and_tiny_pictures_are_refused(tmp_path):
  Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "blank.png")
  with pytest.raises(KmnistError, match="blank"):
    images.load_png(tmp_path / "blank.png")
  Image.fromarray(np.zeros((4, 40), np.uint8)).save(tmp_path / "tiny.png")
  with pytest.raises(KmnistError, match="40x4 pixels is too small"):
    images.load_png(tmp_path / "tiny.png")


def png_bytes(picture: Image.Image, form: str = "PNG") -> bytes:
  buffer = io.BytesIO()
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # some writers warn about the modes they convert
    picture.save(buffer, form)
  return buffer.getvalue()


def assert_digit_or_named(source, name="x.png"):
  """What every input must come to: a uint8 28x28 digit, or one KmnistError line naming it."""
  try:
    digit = images.to_mnist(images.decode_picture(source, name), name)
  except KmnistError as e:
    assert str(e).startswith(f"{name}: ") and "\n" not in str(e)
    return None
  assert digit.dtype == np.uint8 and digit.shape == (28, 28)
  return digit


def lying_png(width: int, height: int) -> bytes:
  """A PNG header claiming width x height gray pixels, followed by almost no data."""
  ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
  chunk = lambda kind, body: (  # noqa: E731
    struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
  )
  return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 99))


@pytest.mark.parametrize(
  "width, height, message",
  [
    (5000, 5000, "the picture is 5000x5000 pixels; give at most 16,777,216 pixels"),
    (100_000, 100_000, "the picture claims over 16,777,216 pixels; give a smaller one"),
    (300, 300, r"not a readable image \(OSError\)"),  # the size is fine, the data is missing
  ],
)
def test_a_header_that_lies_about_the_size_is_refused_before_decoding(width, height, message):
  with pytest.raises(KmnistError, match=f"^x.png: {message}"):
    images.decode_picture(io.BytesIO(lying_png(width, height)), "x.png")


# Every mode Pillow has, saved in every format Pillow writes it in.
def in_mode(digit: np.ndarray, mode: str) -> Image.Image:
  gray = Image.fromarray(digit)
  if mode == "LAB":  # lightness = the digit, neutral colour
    return Image.merge(
      "LAB", [gray, Image.new("L", gray.size, 128), Image.new("L", gray.size, 128)]
    )
  if mode == "HSV":
    return gray.convert("RGB").convert("HSV")
  if mode.startswith("I;16"):  # the full 16-bit range, as a 16-bit scan would have it
    return Image.fromarray(digit.astype(np.uint16) * 257).convert(mode)
  try:
    return gray.convert(mode)
  except ValueError:
    return gray.convert("RGBA").convert(mode)


def saved_forms() -> list[tuple[str, str]]:
  Image.init()
  probe = np.zeros((28, 28), np.uint8)
  forms = []
  for mode in Image.MODES:
    for form in sorted(Image.SAVE):
      try:
        png_bytes(in_mode(probe, mode), form)
      except Exception:  # this writer does not take this mode
        continue
      forms.append((mode, form))
  return forms


SAVED_FORMS = saved_forms()
WRITE_ONLY = {"PDF", "PALM", "EPS"}  # Pillow cannot read them back (EPS without Ghostscript)
ICONS = {"ICO", "ICNS"}  # icons are resampled to their own sizes


def test_every_mode_is_tried():
  assert {mode for mode, _ in SAVED_FORMS} == set(Image.MODES) - {"La"}  # no writer takes La


@settings(max_examples=80)
@given(form=st.sampled_from(SAVED_FORMS), index=st.integers(0, 99), scale=st.sampled_from([1, 3]))
def test_any_mode_in_any_format_reads_as_the_digit(mnist_digits, form, index, scale):
  mode, file_format = form
  digit = mnist_digits.images[index]
  big = np.asarray(Image.fromarray(digit).resize((28 * scale, 28 * scale)))
  result = assert_digit_or_named(io.BytesIO(png_bytes(in_mode(big, mode), file_format)))
  if file_format in WRITE_ONLY:
    return
  assert result is not None, (mode, file_format)
  expected = images.to_mnist(big, "x")
  if file_format not in ICONS:  # the same digit, up to lossy formats and 1-bit dithering
    assert np.corrcoef(result.ravel(), expected.ravel())[0, 1] > 0.7


MAGIC = [
  b"",
  b"\x89PNG\r\n\x1a\n",
  b"GIF89a",
  b"\xff\xd8\xff\xe0",
  b"BM",
  b"II*\x00",
  b"MM\x00*",
  b"RIFF\x00\x00\x00\x00WEBPVP8 ",
  b"\x00\x00\x01\x00",
  b"8BPS",
  b"P5\n",
  b"qoif",
  b"DDS ",
  b"icns",
]


@settings(max_examples=150)
@given(magic=st.sampled_from(MAGIC), rest=st.binary(max_size=300))
def test_random_bytes_are_named_never_a_traceback(magic, rest):
  assert_digit_or_named(io.BytesIO(magic + rest))


@settings(max_examples=200)
@given(
  form=st.sampled_from(
    [
      ("L", "PNG"),
      ("RGBA", "PNG"),
      ("I;16", "PNG"),
      ("P", "GIF"),
      ("RGB", "JPEG"),
      ("RGB", "BMP"),
      ("L", "TIFF"),
      ("RGB", "WEBP"),
      ("L", "PPM"),
      ("RGBA", "TGA"),
      ("L", "ICO"),
    ]
  ),
  edits=byte_edits.EDITS,
)
def test_edited_and_truncated_pictures_are_named_never_a_traceback(mnist_digits, form, edits):
  original = png_bytes(in_mode(mnist_digits.images[7], form[0]), form[1])
  assert_digit_or_named(io.BytesIO(byte_edits.mutated(original, edits)))


# Blank and noise: refused as such, in the same words as for arrays (tests/test_predict_arrays.py).
NOISES = {
  "uniform": lambda rng, shape: rng.integers(0, 256, shape),
  "gaussian": lambda rng, shape: np.clip(rng.normal(128, 50, shape), 0, 255),
  "salt and pepper": lambda rng, shape: (rng.random(shape) < 0.1) * 255,
}


@settings(max_examples=30)
@given(
  kind=st.sampled_from(sorted(NOISES)),
  height=st.integers(28, 300),
  width=st.integers(28, 300),
  seed=st.integers(0, 2**32 - 1),
)
def test_noise_pictures_are_named_as_noise(kind, height, width, seed):
  noise = NOISES[kind](np.random.default_rng(seed), (height, width)).astype(np.uint8)
  with pytest.raises(KmnistError, match=r"^n.png: the picture is noise, not a digit"):
    images.to_mnist(
      images.decode_picture(io.BytesIO(png_bytes(Image.fromarray(noise))), "n.png"), "n.png"
    )


@settings(max_examples=20)
@given(
  level=st.integers(0, 255),
  spread=st.integers(0, images.BLANK_LEVELS - 1),
  seed=st.integers(0, 99),
)
def test_blank_pictures_are_named_as_blank(level, spread, seed):
  rng = np.random.default_rng(seed)
  low = min(level, 255 - spread)
  sheet = (low + rng.integers(0, spread + 1, (60, 40))).astype(np.uint8)
  with pytest.raises(KmnistError, match=r"^b.png: the picture is blank \(every pixel within"):
    images.to_mnist(
      images.decode_picture(io.BytesIO(png_bytes(Image.fromarray(sheet))), "b.png"), "b.png"
    )


def test_real_handwriting_is_neither_blank_nor_noise(mnist_digits):
  # The 10,000 test digits: the check's margin on real digits (BUILD_NOTES.md, "Pictures, console,
  # predict").
  from conftest import read_mnist_test_digits

  digits = read_mnist_test_digits(10_000).images
  assert images.ink_problems(digits) == [None] * len(digits)
  for digit in mnist_digits.images[:20]:  # and as users' pictures: dark on light, bigger
    picture = Image.fromarray(255 - digit).resize((112, 112), Image.Resampling.BICUBIC)
    assert assert_digit_or_named(io.BytesIO(png_bytes(picture.convert("RGB")))) is not None
