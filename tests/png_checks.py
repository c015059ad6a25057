"""Test helpers: read the PNGs kmnist draws, find in them the colour of each cell of each image
drawn, and make logits with a chosen share of right answers."""

import numpy as np
from PIL import Image

from kmnist.data.spec import IMAGE_SHAPE, NUM_CLASSES
from kmnist.visualize import figures


def read_rgb(path) -> np.ndarray:
  """The PNG's pixels, uint8 [height, width, 3]."""
  with Image.open(path) as image:
    return np.asarray(image.convert("RGB"))


def cell_colours(fig, png: np.ndarray, shape=IMAGE_SHAPE) -> dict[str, np.ndarray]:
  """{map title: RGB [rows, cols, 3] sampled at the centre of each cell} for every map (of `shape`)
  of a sheet drawn by `figures.maps_figure`: each title stands above its map, at the place
  `figures.tile_places` gives it.

  `png` must be `fig` saved at its own dpi (as kmnist.visualize.figures.save_png does), so the
  figure's layout in display pixels is the PNG's layout, with y flipped (display y grows upwards,
  PNG rows downwards).
  """
  fig.canvas.draw()
  cells = {}
  for ax in fig.axes:
    if not ax.images or not ax.texts:
      continue  # the colour bar
    _, (tile_h, tile_w) = figures.tile_places(1, (1, 1), shape)
    sheet_h, sheet_w = ax.images[0].get_array().shape
    places, _ = figures.tile_places(len(ax.texts), (sheet_h // tile_h, sheet_w // tile_w), shape)
    for text, (top, left) in zip(ax.texts, places, strict=True):
      rows, cols = np.meshgrid(top + np.arange(shape[0]), left + np.arange(shape[1]), indexing="ij")
      xy = ax.transData.transform(np.stack([cols.ravel(), rows.ravel()], axis=1))
      x, y = xy[:, 0].astype(int), (png.shape[0] - xy[:, 1]).astype(int)
      cells[text.get_text()] = png[y, x].reshape(*shape, 3)
  return cells


def assert_red_negative_blue_positive(
  colours: np.ndarray, weights: np.ndarray, limit: float
) -> int:
  """Every weight clearly away from 0 is drawn reddish if negative, bluish if positive. Returns how
  many were checked.

  `limit` is the colour scale's end (|weight| drawn darkest); weights within 5 % of it from 0 are
  near white, where 8-bit colours stop telling the sign.
  """
  red, blue = colours[..., 0].astype(int), colours[..., 2].astype(int)
  clear = np.abs(weights) > 0.05 * limit
  np.testing.assert_array_equal((blue > red)[clear], (weights > 0)[clear])
  np.testing.assert_array_equal((red > blue)[clear], (weights < 0)[clear])
  return int(clear.sum())


def png_size(size_inches) -> tuple[int, int]:
  """(height, width) in pixels of a figure of `size_inches` (width, height) saved by kmnist."""
  return round(size_inches[1] * figures.DPI), round(size_inches[0] * figures.DPI)


def assert_real_picture(path, size_inches):
  assert path.stat().st_size > 0
  pixels = read_rgb(path)
  assert pixels.shape[:2] == png_size(size_inches)
  assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # Drawn content, not a blank canvas.


def random_logits(labels: np.ndarray, right: float, seed=0) -> np.ndarray:
  """Logits that pick the true label for about `right` of the examples and a random digit
  otherwise."""
  rng = np.random.RandomState(seed)
  logits = rng.randn(len(labels), NUM_CLASSES).astype(np.float32)
  picks = np.where(rng.rand(len(labels)) < right, labels, rng.randint(0, NUM_CLASSES, len(labels)))
  logits[np.arange(len(labels)), picks] += 4.0
  return logits
