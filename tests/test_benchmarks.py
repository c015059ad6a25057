"""The benchmarks' own logic on tiny runs: the model family's figures and table, keras-io's."""

import os

import numpy as np
import pytest

from benchmarks import kerasio, models
from kmnist.data.splits import Datasets, Split
from kmnist.export.formats import TFLITE_VARIANTS

from png_checks import read_rgb


def first(split: Split, n: int) -> Split:
  return Split(split.images[:n], split.labels[:n])


@pytest.mark.slow  # a benchmark's plumbing: two short trainings and a picture
def test_the_model_benchmark_reports_every_figure(tmp_path, synthetic_datasets):
  # A fraction of the training digits: the figures' bookkeeping is the subject, not what the models
  # learn (the test split stays whole: the export checks' bars are shares of it).
  d = synthetic_datasets
  tiny = Datasets(first(d.train, 500), first(d.validation, 100), d.test)
  # Scored at the epochs' ends only (score_every_s): the points are the epochs.
  run = models.run_model(
    "softmax+augment", tiny, 0, str(tmp_path), score_every_s=1e9, steps=100, eval_every=50
  )
  assert (run["model"], run["parameters"], run["seed"]) == ("softmax+augment", 7_850, 0)
  assert [epoch for epoch, _ in enumerate(run["epochs"])] == [0, 1]  # two epochs of 50 steps
  assert run["epochs"][-1][1] == run["test_accuracy"]  # the last point is the run's own score
  assert set(run["tflite"]) == set(TFLITE_VARIANTS) and run["training_seconds"] > 0
  reference = models.run_kerasio(tiny, 0, epochs=2, score_every_s=1e9)
  assert reference["parameters"] == 34_826 and len(reference["epochs"]) == 2
  figures = {"machine": models.devices(), "target": models.TARGET, "runs": [run, reference]}
  table = models.table(figures)
  assert "| softmax+augment | 7,850 |" in table and "| keras-io mnist_convnet | 34,826 |" in table
  assert f"{os.cpu_count()} cores; devices:" in table.splitlines()[0] and "CPU:0" in table
  keras_io = table.splitlines()[-1]  # at equal times: both epochs ended within 120 s, so scored
  assert keras_io.startswith("| keras-io mnist_convnet |") and "—" not in keras_io.split("|")[-2]
  picture = models.draw(figures, tmp_path / "models.png")
  pixels = read_rgb(picture)  # 9 x 5.5 inches at 110 dpi, with something drawn
  assert pixels.shape == (605, 990, 3) and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50


def test_accuracy_at_equal_time_is_the_last_score_by_then():
  points = [(5.0, 0.90), (12.0, 0.98), (30.0, 0.99)]
  assert models.accuracy_at(points, 4.0) is None  # not scored yet
  assert models.accuracy_at(points, 12.0) == 0.98 and models.accuracy_at(points, 29.9) == 0.98
  assert models.accuracy_at(points, 1000) == 0.99  # a run that ended keeps its final accuracy
  assert models.seconds_to(points, 0.99) == 30.0 and models.seconds_to(points, 0.995) is None


def test_time_to_the_target_is_the_first_epoch_that_reaches_it():
  clock = models.EpochClock(test=None)
  clock.points = [(10.0, 0.98), (20.0, 0.9921), (30.0, 0.991)]
  assert clock.seconds_to(0.992) == 20.0 and clock.seconds_to(0.995) is None
  assert kerasio.build().count_params() == 34_826


def test_the_batching_table_compares_the_most_clients():
  from benchmarks import serve_batching

  def run(rps, errors=0):
    return {
      "requests_per_s": rps,
      "p50_ms": 1.0,
      "p99_ms": 2.0,
      "errors": errors,
      "rss_before_mib": 700.0,
      "rss_after_mib": 701.0,
      "server_cpu_cores": 0.5,
    }

  figures = {"off": {1: run(100), 64: run(400)}, "on": {1: run(100), 64: run(1000, errors=2)}}
  table = serve_batching.table(figures)
  assert "| on | 64 | 1,000 | 1.0 | 2.0 | 2 | 700 → 701 MiB | 0.50 |" in table
  assert table.endswith("At 64 clients, batching on: 2.50x the unbatched requests/s, 2 errors.")


def test_the_cnn_command_is_compared_with_kerasio_reaching_the_target_or_all_its_training():
  from benchmarks import cnn_command

  rounds = [
    {"seed": 0, "kerasio_seconds_to_target": 60.0, "kerasio_training_seconds": 70.0,
     "kerasio_test_accuracy": 0.9921, "cnn_command_seconds": 40.0},
    {"seed": 1, "kerasio_seconds_to_target": None, "kerasio_training_seconds": 120.0,
     "kerasio_test_accuracy": 0.9914, "cnn_command_seconds": 50.0},
    {"seed": 2, "kerasio_seconds_to_target": 100.0, "kerasio_training_seconds": 130.0,
     "kerasio_test_accuracy": 0.9920, "cnn_command_seconds": 45.0},
  ]  # fmt: skip
  assert cnn_command.ratio(rounds) == 45.0 / 100.0  # medians: 45 s against 60, 120 and 100 s
  table = cnn_command.table({"target": 0.992, "rounds": rounds, "ratio": 0.45})
  assert "| 1 | not reached (120 s trained) (0.9914) | 50 |" in table and "**0.45x**" in table
