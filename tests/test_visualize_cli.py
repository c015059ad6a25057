"""kmnist-visualize: pictures of an existing export, read from the SavedModel; bad input named in one line."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from kmnist import saved_model, visualize, visualize_cli
from kmnist.errors import KmnistError
from png_checks import assert_red_negative_blue_positive, cell_colours, read_rgb


@pytest.fixture(scope="module")
def export(tmp_path_factory, trained_model):
  return saved_model.export_saved_model(trained_model, tmp_path_factory.mktemp("exported") / "saved_model")


def test_draws_an_export_into_its_own_directory(tmp_path, export, trained_model, synthetic_datasets):
  test = synthetic_datasets.test
  pictures = visualize_cli.run(tmp_path / "pics", export=export, test_override=test)
  assert sorted(pictures) == sorted(visualize.PICTURES)
  metrics = json.loads((tmp_path / "pics" / "metrics.json").read_text())
  predictions = trained_model.predict(test.images / 255.0, verbose=0).argmax(-1)
  assert metrics["saved_model_dir"] == str(export)
  assert metrics["test_accuracy"] == pytest.approx(np.mean(predictions == test.labels))
  assert metrics["confusion_matrix"] == visualize.class_report(test.labels, predictions)["confusion_matrix"]
  # The picture shows the weights the Keras model was trained to.
  kernel, _ = trained_model.get_layer("logits").get_weights()
  cells = cell_colours(visualize.weights_figure(kernel), read_rgb(pictures["weights.png"]))
  assert sum(assert_red_negative_blue_positive(colours, kernel[:, int(digit)].reshape(28, 28),
                                               np.abs(kernel).max()) for digit, colours in cells.items()) > 100


def test_reads_the_kernel_and_bias_of_the_export(export, trained_model):
  kernel, bias = visualize_cli.read_dense_weights(export)
  expected_kernel, expected_bias = trained_model.get_layer("logits").get_weights()
  np.testing.assert_array_equal(kernel, expected_kernel)
  np.testing.assert_array_equal(bias, expected_bias)


def test_default_export_is_the_runs_own_and_its_metrics_are_kept(tmp_path, export, synthetic_datasets):
  run_dir = tmp_path / "run"
  run_dir.mkdir()
  (run_dir / "metrics.json").write_text(json.dumps({"saved_model_dir": str(export), "test_loss": 0.25}))
  visualize_cli.run(run_dir, test_override=synthetic_datasets.test)
  metrics = json.loads((run_dir / "metrics.json").read_text())
  assert metrics["test_loss"] == 0.25 and metrics["saved_model_dir"] == str(export)
  assert np.sum(metrics["confusion_matrix"]) == len(synthetic_datasets.test)
  assert set(metrics["per_class"]) == {str(d) for d in range(10)}
  assert (run_dir / "weights.png").is_file()


def test_refuses_to_draw_another_export_into_a_run(tmp_path, export, trained_model, synthetic_datasets):
  other = saved_model.export_saved_model(trained_model, export.parent)
  run_dir = tmp_path / "run"
  run_dir.mkdir()
  (run_dir / "metrics.json").write_text(json.dumps({"saved_model_dir": str(export)}))
  with pytest.raises(KmnistError, match=re.escape(f"belongs to the export {export}, not {other}; pass --model_dir=")):
    visualize_cli.run(run_dir, export=other, test_override=synthetic_datasets.test)
  assert sorted(p.name for p in run_dir.iterdir()) == ["metrics.json"]


@pytest.mark.parametrize("setup, message", [
    (lambda tmp: (tmp / "empty", None), "metrics.json does not exist or names no export; train first"),
    (lambda tmp: (tmp / "run", tmp / "nowhere"), "nowhere is not a SavedModel version directory"),
])
def test_nothing_to_draw_is_named(tmp_path, setup, message):
  model_dir, export = setup(tmp_path)
  with pytest.raises(KmnistError, match=message):
    visualize_cli.run(model_dir, export=export)
  assert not model_dir.exists()


def test_broken_run_metrics_are_named(tmp_path):
  (tmp_path / "metrics.json").write_text("{not json")
  with pytest.raises(KmnistError, match="metrics.json is not valid JSON"):
    visualize_cli.run(tmp_path)


def test_a_savedmodel_that_is_not_a_softmax_regression_is_refused(tmp_path):
  module = tf.Module()
  module.weights = tf.Variable(tf.zeros([3, 3]))
  tf.saved_model.save(module, str(tmp_path / "other"))
  with pytest.raises(KmnistError, match="is not a kmnist softmax regression: expected one 784x10 kernel"):
    visualize_cli.read_dense_weights(tmp_path / "other")


def test_weights_that_do_not_compute_the_served_logits_are_refused(synthetic_datasets):
  images = synthetic_datasets.test.images[:50]
  kernel = np.random.RandomState(0).randn(784, 10)
  logits = images.reshape(50, -1) / 255.0 @ kernel
  visualize_cli.check_weights_explain_logits(kernel, np.zeros(10), images, logits + 1e-5, "ok")
  with pytest.raises(KmnistError, match="variables do not compute its served logits"):
    visualize_cli.check_weights_explain_logits(kernel[:, ::-1], np.zeros(10), images, logits, "bad")


def run_cli(*args, cwd=None, timeout=300):
  return subprocess.run([sys.executable, "-m", "kmnist.visualize_cli", *args], cwd=cwd, capture_output=True,
                        text=True, timeout=timeout)


@pytest.mark.parametrize("args, expected", [
    ([], "runs/kmnist/metrics.json does not exist or names no export; train first (kmnist-train)"),
    (["--export=exported/saved_model/9"], "exported/saved_model/9 is not a SavedModel version directory"),
    (["--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"),
])
def test_cli_names_bad_input_in_one_line(tmp_path, args, expected):
  result = run_cli(*args, cwd=tmp_path)
  assert result.returncode != 0
  assert expected in result.stderr
  assert "Traceback" not in result.stderr
  assert list(tmp_path.iterdir()) == []


def test_cli_helpfull_lists_the_flags():
  result = run_cli("--helpfull")
  for name in ("--export", "--model_dir", "--data_dir", "--manual_dir"):
    assert name in result.stdout


@pytest.mark.slow
def test_cli_redraws_a_real_run_from_its_export(real_run, real_data_dir, tmp_path):
  # As a user would: the export of a default run, drawn into a directory of its own.
  result = run_cli(f"--export={real_run.saved_model_dir}", f"--model_dir={tmp_path / 'pics'}",
                   f"--data_dir={real_data_dir}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Pictures:" in result.stdout
  metrics = json.loads((tmp_path / "pics" / "metrics.json").read_text())
  assert metrics["confusion_matrix"] == real_run.metrics["confusion_matrix"]
  assert metrics["test_accuracy"] == pytest.approx(real_run.metrics["test_accuracy"], abs=1e-6)
  for name in visualize.PICTURES:
    np.testing.assert_array_equal(read_rgb(tmp_path / "pics" / name), read_rgb(real_run.pictures[name]))
