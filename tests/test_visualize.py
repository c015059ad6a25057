"""The pictures and the class report: checked by opening the PNGs, on synthetic arrays (fast) and a real run (slow)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kmnist import data, visualize
from png_checks import assert_red_negative_blue_positive, cell_colours, read_rgb


def png_size(size_inches) -> tuple[int, int]:
  """(height, width) in pixels of a figure of `size_inches` (width, height) saved by kmnist."""
  return round(size_inches[1] * visualize.DPI), round(size_inches[0] * visualize.DPI)


def assert_real_picture(path, size_inches):
  assert path.stat().st_size > 0
  pixels = read_rgb(path)
  assert pixels.shape[:2] == png_size(size_inches)
  assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # Drawn content, not a blank canvas.


def random_logits(labels: np.ndarray, right: float, seed=0) -> np.ndarray:
  """Logits that pick the true label for about `right` of the examples and a random digit otherwise."""
  rng = np.random.RandomState(seed)
  logits = rng.randn(len(labels), data.NUM_CLASSES).astype(np.float32)
  picks = np.where(rng.rand(len(labels)) < right, labels, rng.randint(0, data.NUM_CLASSES, len(labels)))
  logits[np.arange(len(labels)), picks] += 4.0
  return logits


def test_confusion_matrix_counts_true_down_predicted_across():
  counts = visualize.confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 0, 2, 2]))
  expected = np.zeros((10, 10), np.int64)
  expected[0, 0] = expected[0, 1] = expected[1, 1] = expected[2, 0] = 1
  expected[2, 2] = 2
  np.testing.assert_array_equal(counts, expected)


def test_class_report_precision_recall_and_support():
  labels = np.array([0, 0, 0, 1, 1, 2])
  predictions = np.array([0, 0, 1, 1, 0, 1])  # 2 is never predicted; 3-9 never occur.
  report = visualize.class_report(labels, predictions)
  per_class = report["per_class"]
  assert per_class["0"] == {"precision": 2 / 3, "recall": 2 / 3, "support": 3}
  assert per_class["1"] == {"precision": 1 / 3, "recall": 1 / 2, "support": 2}
  assert per_class["2"] == {"precision": None, "recall": 0.0, "support": 1}
  assert per_class["9"] == {"precision": None, "recall": None, "support": 0}
  assert np.sum(report["confusion_matrix"]) == len(labels)
  json.dumps(report, allow_nan=False)  # Goes into metrics.json as it is.


def test_softmax_is_stable_for_huge_logits():
  probabilities = visualize.softmax(np.array([[1000.0, 0.0], [0.0, 0.0]]))
  np.testing.assert_allclose(probabilities, [[1.0, 0.0], [0.5, 0.5]])


def test_weights_png_colour_follows_the_sign_of_each_weight(tmp_path):
  kernel = np.random.RandomState(0).randn(784, 10).astype(np.float32)
  fig = visualize.weights_figure(kernel)
  path = visualize.save_png(fig, tmp_path / "weights.png")
  assert_real_picture(path, visualize.WEIGHTS_SIZE)
  cells = cell_colours(fig, read_rgb(path))
  assert sorted(cells) == [str(d) for d in range(10)]  # One map per digit, titled by it.
  limit = np.abs(kernel).max()
  for digit, colours in cells.items():
    # Flatten lays pixel (row, col) at index row * 28 + col; each map is one column of the kernel.
    weights = kernel[:, int(digit)].reshape(28, 28)
    assert assert_red_negative_blue_positive(colours, weights, limit) > 600


def test_weights_figure_refuses_a_kernel_of_another_shape():
  with pytest.raises(ValueError, match=r"\(784, 10\)"):
    visualize.weights_figure(np.zeros((10, 784)))


def test_confusion_and_mistakes_pngs(tmp_path, synthetic_datasets):
  test = synthetic_datasets.test
  logits = random_logits(test.labels, right=0.8)
  paths = visualize.write_pictures(tmp_path, np.zeros((784, 10)), test, logits)
  assert sorted(paths) == sorted(visualize.PICTURES)
  assert sorted(p.name for p in tmp_path.iterdir()) == sorted(visualize.PICTURES)  # No temporary files left.
  assert_real_picture(paths["confusion_matrix.png"], visualize.CONFUSION_SIZE)
  assert_real_picture(paths["mistakes.png"], visualize.MISTAKES_SIZE)


def test_confusion_figure_writes_every_count():
  counts = visualize.confusion_matrix(*np.random.RandomState(0).randint(0, 10, (2, 500)))
  fig = visualize.confusion_figure(counts)
  written = [int(t.get_text()) for t in fig.axes[0].texts]
  np.testing.assert_array_equal(np.reshape(written, (10, 10)), counts)
  assert "500" in fig.axes[0].get_title()


def test_mistakes_are_the_most_confident_wrong_answers(synthetic_datasets):
  test = synthetic_datasets.test
  logits = random_logits(test.labels, right=0.5)
  fig = visualize.mistakes_figure(test.images, test.labels, logits)
  captions = [t.get_text() for t in fig.axes[0].texts]
  probabilities = visualize.softmax(logits.astype(np.float64))
  wrong = np.flatnonzero(probabilities.argmax(-1) != test.labels)
  surest = wrong[np.argsort(-probabilities[wrong].max(-1), kind="stable")][:32]
  assert len(captions) == 32
  for caption, i in zip(captions, surest):
    assert caption.startswith(f"{test.labels[i]} → {probabilities[i].argmax()} (")
  confidences = [float(c.split("(")[1].split(" %")[0]) for c in captions]
  assert confidences == sorted(confidences, reverse=True)


def test_mistakes_png_without_mistakes(tmp_path, synthetic_datasets):
  test = synthetic_datasets.test
  perfect = np.eye(10, dtype=np.float32)[test.labels] * 10
  fig = visualize.mistakes_figure(test.images, test.labels, perfect)
  assert "no misclassified test digits" in [t.get_text() for t in fig.axes[0].texts]
  assert read_rgb(visualize.save_png(fig, tmp_path / "mistakes.png")).shape[:2] == png_size(visualize.MISTAKES_SIZE)


def test_pictures_render_headless_and_leave_pyplot_alone(tmp_path):
  # No display, and no pyplot: pyplot would pick (and may switch) the process-wide backend and keep every figure.
  script = (
      "import sys, numpy as np\n"
      "from kmnist import visualize\n"
      "from kmnist.data import Split\n"
      "test = Split(images=np.zeros((20, 28, 28), np.uint8), labels=np.arange(20) % 10)\n"
      f"visualize.write_pictures({str(tmp_path)!r}, np.ones((784, 10)), test, np.zeros((20, 10)))\n"
      "assert 'matplotlib.pyplot' not in sys.modules\n"
  )
  env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
  result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  assert sorted(p.name for p in tmp_path.iterdir()) == sorted(visualize.PICTURES)


@pytest.mark.slow
def test_real_confusion_matrix_adds_up_to_the_reported_accuracy(real_run):
  metrics = json.loads((Path(real_run.metrics["config"]["model_dir"]) / "metrics.json").read_text())
  counts = np.array(metrics["confusion_matrix"])
  assert counts.sum() == 10_000
  assert np.trace(counts) == round(metrics["test_accuracy"] * 10_000)
  for digit, stats in metrics["per_class"].items():
    d = int(digit)
    assert stats["support"] == counts[d].sum()
    assert stats["recall"] == pytest.approx(counts[d, d] / counts[d].sum())
    assert stats["precision"] == pytest.approx(counts[d, d] / counts[:, d].sum())
  assert_real_picture(real_run.pictures["confusion_matrix.png"], visualize.CONFUSION_SIZE)
  assert_real_picture(real_run.pictures["mistakes.png"], visualize.MISTAKES_SIZE)


@pytest.mark.slow
def test_real_weights_png_shows_the_exported_weights(real_run):
  # The run's picture, read back against the trained weights.
  kernel, _ = real_run.model.get_layer("logits").get_weights()
  path = real_run.pictures["weights.png"]
  assert_real_picture(path, visualize.WEIGHTS_SIZE)
  cells = cell_colours(visualize.weights_figure(kernel), read_rgb(path))
  checked = sum(assert_red_negative_blue_positive(colours, kernel[:, int(digit)].reshape(28, 28),
                                                  np.abs(kernel).max())
                for digit, colours in cells.items())
  assert len(cells) == 10 and checked > 1000
