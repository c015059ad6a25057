import json
import subprocess
import sys

import numpy as np
import pytest

from kmnist import data, saved_model, tflite, train, visualize
from kmnist.config import TrainConfig
from train_helpers import small_config


def test_run_trains_evaluates_and_exports(tmp_path, synthetic_datasets):
  result = train.run(small_config(tmp_path), datasets_override=synthetic_datasets)
  metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
  assert metrics["test_accuracy"] == result.metrics["test_accuracy"] > 0.9  # the synthetic digits are learnable
  assert metrics["test_examples"] == len(synthetic_datasets.test)
  assert metrics["config"]["steps"] == 60
  assert result.saved_model_dir == tmp_path / "exported" / "saved_model" / "1"
  assert sorted(result.tflite_paths) == ["dynamic", "float", "int8"]
  assert all(path.is_file() for path in result.tflite_paths.values())
  assert metrics["tflite"] == {k: str(v) for k, v in result.tflite_paths.items()}
  assert int(result.model.optimizer.iterations) == 60


def test_tflite_config_picks_the_variants(tmp_path, synthetic_datasets):
  result = train.run(small_config(tmp_path, tflite=("dynamic",)), datasets_override=synthetic_datasets)
  assert list(result.tflite_paths) == ["dynamic"]
  assert [row["variant"] for row in result.tflite_report["variants"]] == ["dynamic"]


def test_steps_per_execution_never_adds_steps(tmp_path, synthetic_datasets):
  config = small_config(tmp_path, steps=100, eval_every=50, steps_per_execution=100)
  result = train.run(config, datasets_override=synthetic_datasets)
  assert int(result.model.optimizer.iterations) == 100


def test_run_draws_pictures_and_reports_each_digit(tmp_path, synthetic_datasets):
  result = train.run(small_config(tmp_path), datasets_override=synthetic_datasets)
  run_dir = tmp_path / "run"
  assert result.pictures == {name: run_dir / name for name in visualize.PICTURES}
  assert all(path.stat().st_size > 0 for path in result.pictures.values())
  metrics = json.loads((run_dir / "metrics.json").read_text())
  counts = np.array(metrics["confusion_matrix"])
  assert counts.sum() == len(synthetic_datasets.test)
  assert np.trace(counts) == round(metrics["test_accuracy"] * len(synthetic_datasets.test))
  assert metrics["per_class"]["3"]["support"] == np.sum(synthetic_datasets.test.labels == 3)


def test_novisualize_skips_the_pictures_but_not_the_class_report(tmp_path, synthetic_datasets):
  result = train.run(small_config(tmp_path, visualize=False), datasets_override=synthetic_datasets)
  assert result.pictures == {}
  assert not any((tmp_path / "run" / name).exists() for name in visualize.PICTURES)
  assert "per_class" in json.loads((tmp_path / "run" / "metrics.json").read_text())


def tensorboard_scalars(log_dir) -> dict:
  """{(run, tag): [values by step]} of what TensorBoard shows as scalars, read from the event files in `log_dir`."""
  import tensorflow as tf

  scalars = {}
  for events in sorted(log_dir.glob("*/events.out.tfevents.*")):
    for record in tf.data.TFRecordDataset(str(events)):
      for value in tf.compat.v1.Event.FromString(record.numpy()).summary.value:
        if value.metadata.plugin_data.plugin_name == "scalars":
          scalars.setdefault((events.parent.name, value.tag), []).append(float(tf.make_ndarray(value.tensor)))
  return scalars


def test_training_logs_tensorboard_scalars(tmp_path, synthetic_datasets):
  import tensorflow as tf

  config = small_config(tmp_path)
  model = train.train_model(config, synthetic_datasets, tf.distribute.get_strategy())
  scalars = tensorboard_scalars(tmp_path / "run" / "logs")
  epochs = config.steps // config.eval_every
  for key in [("train", "epoch_loss"), ("train", "epoch_accuracy"), ("validation", "epoch_accuracy")]:
    assert len(scalars[key]) == epochs, key
  # The last validation point is the trained model's accuracy on the validation split.
  validation = model.evaluate(data.eval_dataset(synthetic_datasets.validation, config.batch_size), verbose=0,
                              return_dict=True)
  assert scalars[("validation", "epoch_accuracy")][-1] == pytest.approx(validation["accuracy"])


def test_same_seed_same_weights(tmp_path, synthetic_datasets):
  a = train.run(small_config(tmp_path / "a"), datasets_override=synthetic_datasets)
  b = train.run(small_config(tmp_path / "b"), datasets_override=synthetic_datasets)
  c = train.run(small_config(tmp_path / "c", seed=1), datasets_override=synthetic_datasets)
  for wa, wb in zip(a.model.get_weights(), b.model.get_weights()):
    np.testing.assert_array_equal(wa, wb)
  assert not np.array_equal(a.model.get_weights()[0], c.model.get_weights()[0])


@pytest.mark.parametrize("steps_per_execution", [10, 15, 100])
def test_steps_per_execution_never_changes_the_number_of_steps(tmp_path, synthetic_datasets, steps_per_execution):
  # Keras runs whole executions: 15 or 100 per call with --eval_every=20 would train 30 or 100 steps per epoch.
  config = small_config(tmp_path, steps_per_execution=steps_per_execution)
  result = train.run(config, datasets_override=synthetic_datasets)
  assert int(result.model.optimizer.iterations.numpy()) == config.steps == 60


def test_runnable_steps_per_execution():
  assert train.runnable_steps_per_execution(TrainConfig(steps_per_execution=100, eval_every=100), replicas=1) == 100
  assert train.runnable_steps_per_execution(TrainConfig(steps_per_execution=100, eval_every=20), replicas=1) == 20
  assert train.runnable_steps_per_execution(TrainConfig(steps_per_execution=15, eval_every=20), replicas=1) == 5
  assert train.runnable_steps_per_execution(TrainConfig(steps_per_execution=100, eval_every=100), replicas=2) == 1


@pytest.mark.slow
def test_end_to_end_on_real_mnist(real_run, real_datasets):
  result = real_run  # The default run, seed 0; shared with the pictures' tests.
  assert result.metrics["test_accuracy"] >= 0.905
  test = real_datasets.test
  reference = result.model.predict(test.images / 255.0, batch_size=10_000, verbose=0)
  served = saved_model.predict_saved_model(result.saved_model_dir, test.images)
  np.testing.assert_array_equal(served["class_id"], reference.argmax(-1))
  on_phone = tflite.predict_tflite(result.tflite_paths["float"], test.images)
  assert np.mean(on_phone["class_id"] == reference.argmax(-1)) >= 0.9999
  # The reported accuracy is the exported model's accuracy on the real labels.
  assert np.mean(served["class_id"] == test.labels) == pytest.approx(result.metrics["test_accuracy"], abs=1e-4)


@pytest.mark.slow
def test_accuracy_over_seeds_matches_the_tutorial(real_datasets, tmp_path):
  # The tutorial's "about 92 %": the last SGD iterate at lr 0.5 is noisy, so judge the spread, not one seed.
  import keras

  accuracies = []
  for seed in range(5):
    config = TrainConfig(seed=seed, model_dir=str(tmp_path / f"seed{seed}"))
    keras.utils.set_random_seed(seed)
    model = train.train_model(config, real_datasets, strategy=__import__("tensorflow").distribute.get_strategy())
    accuracies.append(train.evaluate_model(model, real_datasets.test, config)["test_accuracy"])
  print("test accuracy per seed:", accuracies)
  assert np.mean(accuracies) >= 0.915
  assert min(accuracies) >= 0.905


@pytest.mark.slow
def test_cli_main_command(tmp_path, real_data_dir):
  # The README's run command, as a user types it (data dir pointed at the prepared test copy).
  result = subprocess.run([sys.executable, "-m", "kmnist.train", f"--data_dir={real_data_dir}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  accuracy = float(result.stdout.split("test accuracy:")[1].split()[0])
  assert accuracy >= 0.905
  assert (tmp_path / "exported" / "saved_model" / "1" / "saved_model.pb").is_file()
  tflite_dir = tmp_path / "exported" / "tflite" / "1"
  for name in ("kmnist_float.tflite", "kmnist_dynamic.tflite", "kmnist_int8.tflite", "labels.txt",
               "tflite_report.json"):
    assert (tflite_dir / name).is_file()
  # The report's table is printed too.
  assert (tflite_dir / "tflite_report.md").read_text() in result.stdout
  metrics = json.loads((tmp_path / "runs" / "kmnist" / "metrics.json").read_text())
  assert metrics["test_accuracy"] == pytest.approx(accuracy, abs=5e-5)
  assert all((tmp_path / "runs" / "kmnist" / name).is_file() for name in visualize.PICTURES)
  assert "Pictures: runs/kmnist/weights.png" in result.stdout
  assert list((tmp_path / "runs" / "kmnist" / "logs" / "train").glob("events.out.tfevents.*"))


def test_test_scores_match_keras_metrics():
  import keras

  rng = np.random.RandomState(0)
  logits = rng.randn(500, 10).astype(np.float32) * 3
  labels = rng.randint(0, 10, 500)
  scores = train.score_test_logits(logits, labels, TrainConfig())
  keras_loss = keras.losses.CategoricalCrossentropy(from_logits=True)(np.eye(10)[labels], logits)
  assert scores["test_loss"] == pytest.approx(float(keras_loss), rel=1e-5)
  assert scores["test_accuracy"] == np.mean(logits.argmax(-1) == labels)
  assert scores["test_examples"] == 500
