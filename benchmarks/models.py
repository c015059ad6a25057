"""The model family on this machine: `python -m benchmarks --models=softmax,mlp,cnn,cnn+augment`.

For each model and seed, a default kmnist-train run on the prepared data (`train.run`: training,
every export and its checks) with a clock that stops while the test set is scored after every epoch,
so that the figures say when a model first reaches 99.2 % in training time alone; and, in the same
process on the same machine, the keras-io `mnist_convnet` recipe (benchmarks/kerasio.py) clocked the
same way. Prints a table and writes JSON (`--models_out`).
"""

import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from benchmarks import kerasio
from kmnist.models import metrics
from kmnist.training import train
from kmnist.training.config import TrainConfig
from kmnist.util.errors import KmnistError

TARGET = 0.992  # the keras-io recipe's published accuracy, and the bar for time-to-accuracy


class EpochClock(keras.callbacks.Callback):
  """Training time so far and test accuracy after every epoch; the scoring itself is not timed."""

  def __init__(self, test, images=None):
    super().__init__()
    self.test, self.images = test, images
    self.points = []  # (training seconds so far, test accuracy)
    self.training_seconds = 0.0

  def on_epoch_begin(self, epoch, logs=None):
    self.started = time.perf_counter()

  def on_epoch_end(self, epoch, logs=None):
    self.training_seconds += time.perf_counter() - self.started
    images = self.images if self.images is not None else self.test.images.astype("float32") / 255
    accuracy = metrics.accuracy(
      self.model.predict(images, batch_size=1000, verbose=0), self.test.labels
    )
    self.points.append((round(self.training_seconds, 2), accuracy))

  def seconds_to(self, target: float) -> float | None:
    return next((seconds for seconds, accuracy in self.points if accuracy >= target), None)


def run_model(name: str, datasets, seed: int, data_dir: str, **overrides) -> dict:
  """One default run of `name` ("cnn+augment" for --augment); `overrides` change it (tests)."""
  model_name, augment = name.split("+")[0], name.endswith("+augment")
  with tempfile.TemporaryDirectory() as tmp:
    config = TrainConfig(
      model=model_name,
      augment=augment,
      seed=seed,
      data_dir=data_dir,
      model_dir=f"{tmp}/run",
      export_dir=f"{tmp}/exported",
      visualize=False,
      **overrides,
    )
    clock = EpochClock(datasets.test)
    result = train.run(config, datasets_override=datasets, callbacks=[clock])
  variants = {row["variant"]: row for row in result.tflite_report["variants"]}
  return {
    "model": name,
    "seed": seed,
    "parameters": result.model.count_params(),
    "test_accuracy": result.metrics["test_accuracy"],
    "training_seconds": clock.training_seconds,
    "examples_per_second": config.steps * config.batch_size / clock.training_seconds,
    "seconds_to_target": clock.seconds_to(TARGET),
    "epochs": clock.points,
    "replicas": result.metrics["replicas"],
    "tflite": {
      v: {k: row[k] for k in ("size_bytes", "test_accuracy", "invoke_latency_us")}
      for v, row in variants.items()
    },
    "int8_minus_keras_points": 100
    * (variants["int8"]["test_accuracy"] - result.metrics["test_accuracy"]),
  }


def run_kerasio(datasets, seed: int, epochs: int = kerasio.EPOCHS) -> dict:
  test_images = datasets.test.images[..., None].astype("float32") / 255
  clock = EpochClock(datasets.test, test_images)
  model = kerasio.train(datasets, seed, [clock], epochs)
  return {
    "model": "keras-io mnist_convnet",
    "seed": seed,
    "parameters": model.count_params(),
    "test_accuracy": clock.points[-1][1],
    "training_seconds": clock.training_seconds,
    "examples_per_second": 0.9
    * (len(datasets.train) + len(datasets.validation))
    * epochs
    / clock.training_seconds,
    "seconds_to_target": clock.seconds_to(TARGET),
    "epochs": clock.points,
  }


def devices() -> dict:
  return {
    "devices": [d.name for d in tf.config.list_logical_devices()],
    "gpus": len(tf.config.list_logical_devices("GPU")),
  }


def benchmark(names, seeds, datasets, data_dir: str, with_kerasio: bool, progress=None) -> dict:
  """Every run; `progress(figures)` is called after each, so a long benchmark keeps what it has."""
  figures = {"machine": devices(), "target": TARGET, "runs": []}
  jobs = [(run_model, (name, datasets, seed, data_dir)) for name in names for seed in seeds]
  jobs += [(run_kerasio, (datasets, seed)) for seed in seeds] if with_kerasio else []
  for job, args in jobs:
    try:
      figures["runs"].append(job(*args))
    except KmnistError as e:  # a run the product refuses is a finding, not the end of the benchmark
      figures["runs"].append({"model": args[0], "seed": args[2], "error": str(e)})
    if progress:
      progress(figures)
  return figures


def table(figures: dict) -> str:
  rows = [
    f"devices: {', '.join(figures['machine']['devices'])}",
    "",
    "| model | params | test accuracy (seeds) | mean | training s | examples/s | s to 99.2 % "
    "| TFLite float / dynamic / int8 bytes | int8 − Keras | int8 latency |",
    "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
  ]
  by_model = {}
  failed = [run for run in figures["runs"] if "error" in run]
  for run in figures["runs"]:
    if "error" not in run:
      by_model.setdefault(run["model"], []).append(run)
  for name, runs in by_model.items():
    accuracies = [r["test_accuracy"] for r in runs]
    reach = [r["seconds_to_target"] for r in runs]
    reached = ", ".join("not reached" if s is None else f"{s:.0f}" for s in reach)
    tfl = runs[0].get("tflite")
    sizes = (
      " / ".join(f"{tfl[v]['size_bytes']:,}" for v in ("float", "dynamic", "int8")) if tfl else ""
    )
    int8 = f"{np.mean([r['int8_minus_keras_points'] for r in runs]):+.2f} pt" if tfl else ""
    latency = f"{tfl['int8']['invoke_latency_us']:.0f} µs" if tfl else ""
    rows.append(
      f"| {name} | {runs[0]['parameters']:,} | {', '.join(f'{a:.4f}' for a in accuracies)} "
      f"| {np.mean(accuracies):.4f} | {np.mean([r['training_seconds'] for r in runs]):.0f} "
      f"| {np.mean([r['examples_per_second'] for r in runs]):,.0f} | {reached} | {sizes} | "
      f"{int8} | {latency} |"
    )
  rows += [f"\n{run['model']} seed {run['seed']} failed: {run['error']}" for run in failed]
  return "\n".join(rows)
