"""The pictures a run draws (write_pictures) and the ones kmnist-visualize draws from an export
(draw_export): checked by opening the PNGs, on synthetic arrays (fast) and a real run (slow)."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from kmnist.export import record, saved_model
from kmnist.models import metrics, registry
from kmnist.util.errors import KmnistError
from kmnist.visualize import figures, pictures

from png_checks import (
  assert_real_picture,
  assert_red_negative_blue_positive,
  cell_colours,
  random_logits,
  read_rgb,
)


def test_confusion_and_mistakes_pngs(tmp_path, synthetic_datasets):
  test = synthetic_datasets.test
  logits = random_logits(test.labels, right=0.8)
  paths = pictures.write_pictures(tmp_path, "digit_maps", np.zeros((784, 10)), test, logits)
  assert sorted(paths) == sorted(pictures.PICTURES)
  assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
    pictures.PICTURES
  )  # No temporary files left.
  assert_real_picture(paths["confusion_matrix.png"], figures.CONFUSION_SIZE)
  assert_real_picture(paths["mistakes.png"], figures.MISTAKES_SIZE)


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
  assert_real_picture(real_run.pictures["confusion_matrix.png"], figures.CONFUSION_SIZE)
  assert_real_picture(real_run.pictures["mistakes.png"], figures.MISTAKES_SIZE)


@pytest.mark.slow
def test_real_weights_png_shows_the_exported_weights(real_run):
  # The run's picture, read back against the trained weights.
  kernel, _ = real_run.model.get_layer("logits").get_weights()
  path = real_run.pictures["weights.png"]
  assert_real_picture(path, figures.WEIGHTS_SIZE)
  cells = cell_colours(figures.weights_figure(kernel), read_rgb(path))
  checked = sum(
    assert_red_negative_blue_positive(
      colours, kernel[:, int(digit)].reshape(28, 28), np.abs(kernel).max()
    )
    for digit, colours in cells.items()
  )
  assert len(cells) == 10 and checked > 1000


@pytest.fixture(scope="module")
def export(tmp_path_factory, trained_model):
  return saved_model.export_saved_model(
    trained_model, tmp_path_factory.mktemp("exported") / "saved_model"
  )


def test_draws_an_export_into_its_own_directory(
  tmp_path, export, trained_model, synthetic_datasets
):
  test = synthetic_datasets.test
  drawn = pictures.draw_export(tmp_path / "pics", export, test, run_metrics={})
  assert sorted(drawn) == sorted(pictures.PICTURES)
  written = json.loads((tmp_path / "pics" / "metrics.json").read_text())
  predictions = registry.predict_logits(trained_model, test.images).argmax(-1)
  assert written["saved_model_dir"] == str(export)
  assert written["test_accuracy"] == pytest.approx(np.mean(predictions == test.labels))
  assert (
    written["confusion_matrix"]
    == metrics.class_report(test.labels, predictions)["confusion_matrix"]
  )
  # The picture shows the weights the Keras model was trained to.
  kernel, _ = trained_model.get_layer("logits").get_weights()
  cells = cell_colours(figures.weights_figure(kernel), read_rgb(drawn["weights.png"]))
  limit = np.abs(kernel).max()
  assert (
    sum(
      assert_red_negative_blue_positive(colours, kernel[:, int(digit)].reshape(28, 28), limit)
      for digit, colours in cells.items()
    )
    > 100
  )


def test_a_runs_own_metrics_are_kept(tmp_path, export, synthetic_datasets):
  run_metrics = {"saved_model_dir": str(export), "test_loss": 0.25}
  pictures.draw_export(tmp_path, export, synthetic_datasets.test, run_metrics)
  written = json.loads((tmp_path / "metrics.json").read_text())
  assert written["test_loss"] == 0.25 and written["saved_model_dir"] == str(export)
  assert np.sum(written["confusion_matrix"]) == len(synthetic_datasets.test)
  assert set(written["per_class"]) == {str(d) for d in range(10)}


def test_an_export_without_a_record_is_told_by_its_variables_and_says_so(export, trained_model):
  said = []
  about, kernel, bias = pictures.read_pixel_kernel(export, log=said.append)
  assert (about["model"], about["guessed"]) == ("softmax", True)
  assert len(said) == 1 and "has no assets.extra/kmnist.json (an export from an older" in said[0]
  expected_kernel, expected_bias = trained_model.get_layer("logits").get_weights()
  np.testing.assert_array_equal(kernel, expected_kernel)
  np.testing.assert_array_equal(bias, expected_bias)


def test_a_savedmodel_that_is_not_a_softmax_regression_is_refused(tmp_path):
  module = tf.Module()
  module.weights = tf.Variable(tf.zeros([3, 3]))
  tf.saved_model.save(module, str(tmp_path / "other"))
  with pytest.raises(
    KmnistError, match="is not a kmnist model: it has no kmnist.json, and none of a softmax regress"
  ):
    pictures.read_pixel_kernel(tmp_path / "other")


def test_weights_that_do_not_compute_the_served_logits_are_refused(synthetic_datasets):
  images = synthetic_datasets.test.images[:50]
  kernel = np.random.RandomState(0).randn(784, 10)
  logits = images.reshape(50, -1) / 255.0 @ kernel
  pictures.check_weights_explain_logits(kernel, np.zeros(10), images, logits + 1e-5, "ok")
  with pytest.raises(KmnistError, match="variables do not compute its served logits"):
    pictures.check_weights_explain_logits(kernel[:, ::-1], np.zeros(10), images, logits, "bad")


def unit_weights(name: str, kernel: np.ndarray, title: str) -> np.ndarray:
  """The weights drawn in the map titled `title` of a model's weights.png."""
  index = int(title.split()[-1])
  return kernel[:, index].reshape(28, 28) if name == "mlp" else kernel[:, :, 0, index]


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_every_model_is_drawn_from_its_export(tmp_path, trained_models, synthetic_datasets, name):
  model = trained_models[name]
  about = record.make(registry.get(name), {"model": name})
  export = saved_model.export_saved_model(model, tmp_path / "saved_model", about=about)
  said = []
  read, kernel, bias = pictures.read_pixel_kernel(export, log=said.append)
  assert (read, bias, said) == ({**about, "export_version": 1}, None, [])  # its record, no guess
  np.testing.assert_array_equal(kernel, pictures.pixel_kernel(model, name))
  drawn = pictures.draw_export(tmp_path / "pics", export, synthetic_datasets.test, {})
  assert sorted(drawn) == sorted(pictures.PICTURES)
  cells = cell_colours(
    pictures.weights_figure(registry.get(name).picture, kernel),
    read_rgb(drawn["weights.png"]),
    shape=kernel.shape[:2] if name == "cnn" else (28, 28),  # the 3x3 filters, or 28x28 maps
  )
  assert len(cells) == 32  # the 32 strongest hidden units, or the 32 filters
  limit = (
    np.abs(kernel).max()
    if name == "cnn"
    else np.abs(kernel[:, [int(t.split()[-1]) for t in cells]]).max()
  )
  assert (
    sum(
      assert_red_negative_blue_positive(colours, unit_weights(name, kernel, title), limit)
      for title, colours in cells.items()
    )
    > 100
  )
