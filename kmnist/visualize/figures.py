"""The figures: the tutorial's weight maps, the confusion matrix, the worst mistakes; and PNGs.

Each takes plain arrays (the Dense kernel, the test split, the model's test logits). Figures are
drawn with matplotlib's object API on an Agg canvas, never through pyplot: nothing needs a display,
and the user's backend and pyplot state stay untouched.
"""

import io
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kmnist.data.spec import IMAGE_SHAPE, NUM_CLASSES
from kmnist.models import metrics
from kmnist.util import files

DPI = 100
# Figure sizes in inches; the PNGs are exactly size x DPI pixels (no tight bounding box).
WEIGHTS_SIZE = (10.0, 4.5)
MAPS_SIZE = (10.0, 5.5)
CONFUSION_SIZE = (7.0, 6.0)
MISTAKES_SIZE = (10.0, 5.5)
MISTAKES_GRID = (4, 8)  # rows, columns: the 32 most confident mistakes.
MISTAKES_PAD = 10  # image pixels above each digit for its caption.


def _figure(size) -> Figure:
  fig = Figure(figsize=size, dpi=DPI, layout="constrained")
  FigureCanvasAgg(fig)  # Render with Agg whatever the user's default backend is.
  return fig


def weights_figure(kernel: np.ndarray):
  """The tutorial's picture: each digit's weights as a 28x28 map, red < 0 < blue, white 0."""
  kernel = np.asarray(kernel)
  if kernel.shape != (np.prod(IMAGE_SHAPE), NUM_CLASSES):
    raise ValueError(f"expected a Dense kernel of shape (784, 10), got {kernel.shape}")
  maps = kernel.T.reshape((NUM_CLASSES,) + IMAGE_SHAPE)  # Flatten lays pixels out row by row.
  titles = [str(digit) for digit in range(NUM_CLASSES)]
  label = "weight (red: evidence against, blue: for)"
  return maps_figure(
    maps, titles, "What each digit's weights look for", label, (2, 5), WEIGHTS_SIZE
  )


def hidden_units_figure(kernel: np.ndarray, units: int = 32):
  """An MLP's first layer: the input weights of its `units` strongest hidden units, as 28x28
  maps."""
  kernel = np.asarray(kernel)
  if kernel.ndim != 2 or kernel.shape[0] != np.prod(IMAGE_SHAPE):
    raise ValueError(f"expected a first Dense kernel of shape (784, units), got {kernel.shape}")
  strongest = np.argsort(-np.linalg.norm(kernel, axis=0), kind="stable")[:units]
  maps = kernel[:, strongest].T.reshape((len(strongest),) + IMAGE_SHAPE)
  title = f"What the {len(strongest)} strongest of {kernel.shape[1]} hidden units look for"
  grid = (4, int(np.ceil(len(strongest) / 4)))
  return maps_figure(maps, [f"unit {u}" for u in strongest], title, "input weight", grid)


def filters_figure(kernel: np.ndarray):
  """A CNN's first convolution: each 3x3 filter (kernel [3, 3, 1, filters]) as a tiny map."""
  kernel = np.asarray(kernel)
  if kernel.ndim != 4 or kernel.shape[2] != 1:
    raise ValueError(
      f"expected a first Conv2D kernel of shape (h, w, 1, filters), got {kernel.shape}"
    )
  maps = np.moveaxis(kernel[:, :, 0, :], -1, 0)
  grid = (4, int(np.ceil(len(maps) / 4)))
  title = f"The {len(maps)} filters of the first convolution (red: darker, blue: brighter)"
  return maps_figure(maps, [f"filter {i}" for i in range(len(maps))], title, "weight", grid)


def maps_figure(maps: np.ndarray, titles, title: str, label: str, grid, size=MAPS_SIZE):
  """Weight maps on one colour scale centred on 0 (so colours compare across maps), red < 0 <
  blue, white between them; each map's title stands above it."""
  limit = float(np.abs(maps).max()) or 1.0
  fig = _figure(size)
  ax = fig.subplots()
  ax.set_axis_off()
  # One sheet of tiles in one image, as mistakes_figure does: a tenth of the time of an axes each.
  height, width = maps.shape[1:]
  places, sheet_shape = tile_places(len(maps), grid, (height, width))
  sheet = np.full(sheet_shape, np.nan)
  for weights, name, (top, left) in zip(maps, titles, places, strict=False):
    sheet[top : top + height, left : left + width] = weights
    fontsize = 14 if len(maps) <= 10 else 8
    ax.text(left + (width - 1) / 2, top - 0.6, name, ha="center", va="bottom", fontsize=fontsize)
  colours = matplotlib.colormaps["RdBu"].with_extremes(bad="white")
  image = ax.imshow(sheet, cmap=colours, vmin=-limit, vmax=limit, interpolation="nearest")
  fig.colorbar(image, ax=ax, shrink=0.9, label=label)
  fig.suptitle(title)
  return fig


def tile_places(count: int, grid, shape) -> tuple[list, tuple]:
  """Where each of `count` maps of `shape` lies in a sheet of `grid` (rows, columns) tiles: [(top
  row, left column)], and the sheet's shape; each tile leaves room above for its title."""
  (rows, cols), (height, width) = grid, shape
  tile_h, tile_w = height + max(1, round(0.3 * height)), width + max(1, height // 6)
  places = [((k // cols) * tile_h + tile_h - height, (k % cols) * tile_w) for k in range(count)]
  return places, (rows * tile_h, cols * tile_w)


def confusion_figure(counts: np.ndarray):
  """Test-set counts, true digit down, predicted across; the diagonal is what it got right."""
  counts = np.asarray(counts)
  total, correct = int(counts.sum()), int(np.trace(counts))
  fig = _figure(CONFUSION_SIZE)
  ax = fig.subplots()
  ax.imshow(counts, cmap="Blues", interpolation="nearest")
  dark = counts.max() / 2  # Above this the cell is dark enough to need white text.
  for (true, predicted), n in np.ndenumerate(counts):
    ax.text(
      predicted,
      true,
      str(n),
      ha="center",
      va="center",
      fontsize=8,
      color="white" if n > dark else "black",
    )
  ax.set_xticks(range(NUM_CLASSES))
  ax.set_yticks(range(NUM_CLASSES))
  ax.set_xlabel("predicted digit")
  ax.set_ylabel("true digit")
  ax.set_title(
    f"Test confusion matrix: {correct:,} of {total:,} right ({correct / max(total, 1):.2%})"
  )
  return fig


def mistakes_figure(images: np.ndarray, labels: np.ndarray, logits: np.ndarray):
  """The mistakes the model was surest about, titled `true → predicted (confidence)`."""
  probabilities = metrics.softmax(np.asarray(logits, np.float64))
  predictions = probabilities.argmax(-1)
  confidence = probabilities.max(-1)
  wrong = np.flatnonzero(predictions != labels)
  rows, cols = MISTAKES_GRID
  shown = wrong[np.argsort(-confidence[wrong], kind="stable")][: rows * cols]
  fig = _figure(MISTAKES_SIZE)
  fig.suptitle(
    f"The {len(shown)} most confident of {len(wrong):,} mistakes on {len(labels):,} test digits"
  )
  ax = fig.subplots()
  ax.set_axis_off()
  if not len(shown):
    ax.text(0.5, 0.5, "no misclassified test digits", ha="center", va="center", fontsize=16)
    return fig
  # One sheet of tiles in one image, not 32 axes: it renders several times faster.
  side = IMAGE_SHAPE[0]
  tile = side + MISTAKES_PAD
  sheet = np.zeros((rows * tile, cols * tile), np.uint8)
  for k, i in enumerate(shown):
    top, left = (k // cols) * tile + MISTAKES_PAD, (k % cols) * tile + MISTAKES_PAD // 2
    sheet[top : top + side, left : left + side] = images[i]
    # Floored, so a 99.97 % sure mistake does not read as 100 %.
    ax.text(
      left + side / 2,
      top - 1,
      f"{labels[i]} → {predictions[i]} ({np.floor(confidence[i] * 1000) / 10:.1f} %)",
      ha="center",
      va="bottom",
      fontsize=9,
    )
  ax.imshow(sheet, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")  # Dark ink on white.
  return fig


def save_png(fig, path) -> Path:
  """Renders `fig` at DPI and writes it atomically, so a reader never sees half a PNG."""
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=DPI)
  return files.write_bytes_atomic(path, buffer.getvalue())
