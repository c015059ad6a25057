"""The benchmarks' own logic on tiny runs: the model family's figures and table, keras-io's."""

from benchmarks import kerasio, models
from kmnist.data.splits import Datasets, Split


def first(split: Split, n: int) -> Split:
  return Split(split.images[:n], split.labels[:n])


def test_the_model_benchmark_reports_every_figure(tmp_path, synthetic_datasets):
  # A fraction of the training digits: the figures' bookkeeping is the subject, not what the models
  # learn (the test split stays whole: the export checks' bars are shares of it).
  d = synthetic_datasets
  tiny = Datasets(first(d.train, 500), first(d.validation, 100), d.test)
  run = models.run_model("softmax+augment", tiny, 0, str(tmp_path), steps=100, eval_every=50)
  assert (run["model"], run["parameters"], run["seed"]) == ("softmax+augment", 7_850, 0)
  assert [epoch for epoch, _ in enumerate(run["epochs"])] == [0, 1]  # two epochs of 50 steps
  assert run["epochs"][-1][1] == run["test_accuracy"]  # the last point is the run's own score
  assert set(run["tflite"]) == {"float", "dynamic", "int8"} and run["training_seconds"] > 0
  reference = models.run_kerasio(tiny, 0, epochs=2)
  assert reference["parameters"] == 34_826 and len(reference["epochs"]) == 2
  figures = {"machine": models.devices(), "target": models.TARGET, "runs": [run, reference]}
  table = models.table(figures)
  assert "| softmax+augment | 7,850 |" in table and "| keras-io mnist_convnet | 34,826 |" in table
  assert "CPU:0" in table.splitlines()[0]


def test_time_to_the_target_is_the_first_epoch_that_reaches_it():
  clock = models.EpochClock(test=None)
  clock.points = [(10.0, 0.98), (20.0, 0.9921), (30.0, 0.991)]
  assert clock.seconds_to(0.992) == 20.0 and clock.seconds_to(0.995) is None
  assert kerasio.build().count_params() == 34_826
