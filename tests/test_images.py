"""Users' pictures and arrays turned into MNIST digits: fitted, centred and inverted as MNIST's
were; bad files named."""

import numpy as np
import pytest
from PIL import Image

from kmnist import images
from kmnist.errors import KmnistError


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


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.full((28, 28), 7, np.uint8), np.full((1, 28, 28), 7, np.uint8)),
        (np.ones((3, 784), np.float32), np.full((3, 28, 28), 255, np.uint8)),
        (np.zeros((2, 28, 28), np.int64), np.zeros((2, 28, 28), np.uint8)),
    ],
)
def test_npy_shapes_and_scales(tmp_path, array, expected):
  np.save(tmp_path / "a.npy", array)
  np.testing.assert_array_equal(images.load_npy(tmp_path / "a.npy"), expected)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((5,)), r"shape \(5,\) is not digits"),
        (np.zeros((2, 27, 28)), "is not digits"),
        (np.full((28, 28), 3.0), r"float pixels must be in \[0, 1\]"),
        (np.full((28, 28), 300), "must be integers 0-255"),
    ],
)
def test_bad_npy_is_refused(tmp_path, array, message):
  np.save(tmp_path / "a.npy", array)
  with pytest.raises(KmnistError, match=message):
    images.load_npy(tmp_path / "a.npy")
