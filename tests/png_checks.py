"""Test helpers: read the PNGs kmnist draws, and find in them the colour of each cell of each image drawn."""

import numpy as np
from PIL import Image


def read_rgb(path) -> np.ndarray:
  """The PNG's pixels, uint8 [height, width, 3]."""
  with Image.open(path) as image:
    return np.asarray(image.convert("RGB"))


def cell_colours(fig, png: np.ndarray) -> dict[str, np.ndarray]:
  """{axes title: RGB [rows, cols, 3] sampled at the centre of each cell} for every 28x28 image in `fig`.

  `png` must be `fig` saved at its own dpi (as kmnist.visualize.save_png does), so the figure's layout in
  display pixels is the PNG's layout, with y flipped (display y grows upwards, PNG rows downwards).
  """
  fig.canvas.draw()
  height = png.shape[0]
  cells = {}
  for ax in fig.axes:
    for image in ax.images:
      rows, cols = image.get_array().shape[:2]
      if (rows, cols) != (28, 28):
        continue
      box = image.get_window_extent()
      ys = box.y1 - (np.arange(rows) + 0.5) * box.height / rows  # Row 0 is drawn at the top.
      xs = box.x0 + (np.arange(cols) + 0.5) * box.width / cols
      cells[ax.get_title()] = png[(height - ys).astype(int)[:, None], xs.astype(int)[None, :]]
  return cells


def assert_red_negative_blue_positive(colours: np.ndarray, weights: np.ndarray, limit: float) -> int:
  """Every weight clearly away from 0 is drawn reddish if negative, bluish if positive. Returns how many were checked.

  `limit` is the colour scale's end (|weight| drawn darkest); weights within 5 % of it from 0 are near white,
  where 8-bit colours stop telling the sign.
  """
  red, blue = colours[..., 0].astype(int), colours[..., 2].astype(int)
  clear = np.abs(weights) > 0.05 * limit
  np.testing.assert_array_equal((blue > red)[clear], (weights > 0)[clear])
  np.testing.assert_array_equal((red > blue)[clear], (weights < 0)[clear])
  return int(clear.sum())
