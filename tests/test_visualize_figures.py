"""The figures, checked by opening the PNGs: the weight maps' colours follow the weights' signs,
every count is written, the mistakes are the surest wrong answers."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kmnist.models import metrics
from kmnist.visualize import figures, pictures

from png_checks import (
  assert_real_picture,
  assert_red_negative_blue_positive,
  cell_colours,
  png_size,
  random_logits,
  read_rgb,
)


def test_weights_png_colour_follows_the_sign_of_each_weight(tmp_path):
  kernel = np.random.RandomState(0).randn(784, 10).astype(np.float32)
  fig = figures.weights_figure(kernel)
  path = figures.save_png(fig, tmp_path / "weights.png")
  assert_real_picture(path, figures.WEIGHTS_SIZE)
  cells = cell_colours(fig, read_rgb(path))
  assert sorted(cells) == [str(d) for d in range(10)]  # One map per digit, titled by it.
  limit = np.abs(kernel).max()
  for digit, colours in cells.items():
    # Flatten lays pixel (row, col) at index row * 28 + col; each map is one column of the kernel.
    weights = kernel[:, int(digit)].reshape(28, 28)
    assert assert_red_negative_blue_positive(colours, weights, limit) > 600


def test_weights_figure_refuses_a_kernel_of_another_shape():
  with pytest.raises(ValueError, match=r"\(784, 10\)"):
    figures.weights_figure(np.zeros((10, 784)))


def test_confusion_figure_writes_every_count():
  counts = metrics.confusion_matrix(*np.random.RandomState(0).randint(0, 10, (2, 500)))
  fig = figures.confusion_figure(counts)
  written = [int(t.get_text()) for t in fig.axes[0].texts]
  np.testing.assert_array_equal(np.reshape(written, (10, 10)), counts)
  assert "500" in fig.axes[0].get_title()


def test_mistakes_are_the_most_confident_wrong_answers(synthetic_datasets):
  test = synthetic_datasets.test
  logits = random_logits(test.labels, right=0.5)
  fig = figures.mistakes_figure(test.images, test.labels, logits)
  captions = [t.get_text() for t in fig.axes[0].texts]
  probabilities = metrics.softmax(logits.astype(np.float64))
  wrong = np.flatnonzero(probabilities.argmax(-1) != test.labels)
  surest = wrong[np.argsort(-probabilities[wrong].max(-1), kind="stable")][:32]
  assert len(captions) == 32
  for caption, i in zip(captions, surest, strict=True):
    assert caption.startswith(f"{test.labels[i]} → {probabilities[i].argmax()} (")
  confidences = [float(c.split("(")[1].split(" %")[0]) for c in captions]
  assert confidences == sorted(confidences, reverse=True)


def test_mistakes_png_without_mistakes(tmp_path, synthetic_datasets):
  test = synthetic_datasets.test
  perfect = np.eye(10, dtype=np.float32)[test.labels] * 10
  fig = figures.mistakes_figure(test.images, test.labels, perfect)
  assert "no misclassified test digits" in [t.get_text() for t in fig.axes[0].texts]
  assert read_rgb(figures.save_png(fig, tmp_path / "mistakes.png")).shape[:2] == png_size(
    figures.MISTAKES_SIZE
  )


def test_hidden_units_are_the_strongest_and_filters_every_one():
  kernel = np.random.RandomState(0).randn(784, 64)
  kernel[:, 7] *= 10  # the strongest unit comes first
  fig = figures.hidden_units_figure(kernel)
  titles = [text.get_text() for ax in fig.axes for text in ax.texts]
  assert len(titles) == 32 and titles[0] == "unit 7"
  assert len(set(titles)) == 32
  filters = figures.filters_figure(np.random.RandomState(0).randn(3, 3, 1, 32))
  assert [text.get_text() for ax in filters.axes for text in ax.texts] == [
    f"filter {i}" for i in range(32)
  ]
  with pytest.raises(ValueError, match="first Conv2D kernel"):
    figures.filters_figure(np.zeros((3, 3, 8, 32)))
  with pytest.raises(ValueError, match="first Dense kernel"):
    figures.hidden_units_figure(np.zeros((10, 784)))


def test_figures_render_headless_and_leave_pyplot_alone(tmp_path):
  # No display, and no pyplot: pyplot would pick (and may switch) the process-wide backend and keep
  # every figure. (Keras imports pyplot itself, so the test is that kmnist leaves it untouched.)
  script = (
    "import numpy as np, matplotlib, matplotlib.pyplot as plt\n"
    "from kmnist.visualize import figures\n"
    "backend = matplotlib.get_backend()\n"
    "drawn = {'weights.png': figures.weights_figure(np.ones((784, 10))),\n"
    "  'confusion_matrix.png': figures.confusion_figure(np.eye(10, dtype=int)),\n"
    "  'mistakes.png': figures.mistakes_figure(\n"
    "    np.zeros((20, 28, 28), np.uint8), np.arange(20) % 10,\n"
    "    np.eye(10)[::-1][np.arange(20) % 10])}\n"
    f"for name, fig in drawn.items(): figures.save_png(fig, {str(tmp_path)!r} + '/' + name)\n"
    "assert plt.get_fignums() == [] and matplotlib.get_backend() == backend\n"
  )
  hidden = ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")
  env = {k: v for k, v in os.environ.items() if k not in hidden}
  result = subprocess.run(
    [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
  )
  assert result.returncode == 0, result.stderr[-2000:]
  assert sorted(p.name for p in tmp_path.iterdir()) == sorted(pictures.PICTURES)
  sources = [path.read_text() for path in Path(figures.__file__).parents[1].rglob("*.py")]
  assert not any("matplotlib.pyplot" in source for source in sources)
