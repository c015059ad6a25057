"""Benchmarks on the real data and the tutorial's schedule: `python -m benchmarks` (minutes).

Prints a table and writes it as JSON (`--out`). Measured, in one process tree:
  * kmnist's training loop (`train.train_model`, one epoch of 1000 steps): steady-state examples/s,
    time for the steps without tracing, and the tracing time; the NumPy floor and the tutorial's TF1
    program on the *same batches* (kmnist's `input_pipeline.batch_indices`), with the ratios and all
    three test accuracies;
  * the default command end to end against the tutorial's whole TF1 program, turn about, and
    where its seconds go; a first run that prepares TFDS from the shipped files
    (benchmarks/command.py);
  * SavedModel export, TFLite conversion per variant, and TFLite latency (one image; a batch of
    1,000);
  * `kmnist-train --model=cnn` as a whole command against keras-io's mnist_convnet training to
    99.2 %, turn about (benchmarks/cnn_command.py).
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import app, flags

from benchmarks import command, numpy_floor, stamp

FLAGS = flags.FLAGS
flags.DEFINE_string(
  "data_dir",
  os.path.join("~", "tensorflow_datasets"),
  "TFDS data directory (prepared if needed).",
)
flags.DEFINE_string(
  "out",
  "runs/default_command.json",
  "Where to write the figures as JSON (docs.generate publishes it).",
)
flags.DEFINE_integer("seed", 0, "Seed of the batch order (shared by all three implementations).")
flags.DEFINE_integer(
  "repeats", 3, "Training-loop timings are the median of this many runs (this VM is noisy)."
)
flags.DEFINE_boolean(
  "end_to_end",
  True,
  "Also time the default command as a user runs it, turn about with the tutorial's TF1 program "
  "(benchmarks/command.py).",
)
flags.DEFINE_integer(
  "command_repeats", 5, "Runs of each whole command (kmnist-train, the TF1 program); medians."
)
flags.DEFINE_list(
  "cnn_seeds",
  ["0", "1", "2"],
  "Seeds of keras-io's recipe, each followed by kmnist-train --model=cnn as a whole command "
  "(benchmarks/cnn_command.py); empty: skip it.",
)
flags.DEFINE_list(
  "models",
  [],
  "Benchmark these models instead (benchmarks/models.py), e.g. softmax,mlp,cnn,cnn+augment: "
  "default runs of each on --seeds, beside the keras-io convnet recipe.",
)
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of the --models runs.")
flags.DEFINE_boolean("kerasio", True, "With --models: also train the keras-io recipe on each seed.")
flags.DEFINE_string(
  "models_out", "runs/models.json", "Where --models writes its figures (and its picture, as .png)."
)

STEPS, BATCH, LEARNING_RATE = 1000, 100, 0.5  # the tutorial's schedule


def kmnist_loop(datasets, seed: int) -> dict:
  """kmnist's own training (`train.train_model`: its input pipeline, model, compile and
  steps_per_execution) as one epoch of the tutorial's 1000 steps, so that a clock between executions
  sees only training steps (the validation pass, checkpoint and TensorBoard come after the last)."""
  import keras
  import tensorflow as tf

  from kmnist.models import metrics, registry
  from kmnist.training import train
  from kmnist.training.config import TrainConfig

  ends = []

  class Clock(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
      ends.append(time.perf_counter())  # once per execution of steps_per_execution steps

  with tempfile.TemporaryDirectory() as model_dir:
    config = TrainConfig(seed=seed, eval_every=STEPS, model_dir=model_dir)
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    model = train.train_model(config, datasets, tf.distribute.get_strategy(), callbacks=[Clock()])
  chunk = config.steps_per_execution
  steady_per_chunk = (ends[-1] - ends[0]) / (len(ends) - 1)
  first_chunk = ends[0] - start
  logits = registry.predict_logits(model, datasets.test.images)
  return {
    "seconds_steady": steady_per_chunk * STEPS / chunk,  # 1000 steps at the steady-state rate
    "seconds_total": ends[-1] - start,
    "tracing_seconds": first_chunk - steady_per_chunk,
    "examples_per_second": BATCH * chunk / steady_per_chunk,
    "test_accuracy": metrics.accuracy(logits, datasets.test.labels),
    "model": model,
  }


def batch_order(num_examples: int, seed: int) -> np.ndarray:
  """The first STEPS batches of kmnist's training order, as indices [STEPS, BATCH]."""
  import keras

  from kmnist.data import input_pipeline

  keras.utils.set_random_seed(seed)  # as kmnist's run does before building its pipeline
  return np.stack(
    [b.numpy() for b in input_pipeline.batch_indices(num_examples, BATCH, seed).take(STEPS)]
  )


def tf1_original(datasets, batches) -> dict:
  with tempfile.TemporaryDirectory() as tmp:
    np.savez(
      f"{tmp}/data.npz",
      train_images=datasets.train.images,
      train_labels=datasets.train.labels,
      test_images=datasets.test.images,
      test_labels=datasets.test.labels,
      batches=batches,
    )
    subprocess.run(
      [
        sys.executable,
        "-m",
        "benchmarks.tf1_original",
        f"{tmp}/data.npz",
        f"{tmp}/out.json",
        str(FLAGS.repeats),
      ],
      check=True,
      stdout=subprocess.DEVNULL,
      stderr=subprocess.DEVNULL,
      timeout=600,
    )
    result = json.loads(Path(f"{tmp}/out.json").read_text())
  seconds = result["seconds_steady"] * STEPS / result["steady_steps"]
  return {
    "seconds_steady": seconds,
    "examples_per_second": BATCH * STEPS / seconds,
    "test_accuracy": result["test_accuracy"],
  }


def numpy_run(datasets, batches) -> dict:
  runs = [
    numpy_floor.train(datasets.train.images, datasets.train.labels, batches, LEARNING_RATE)
    for _ in range(FLAGS.repeats)
  ]
  w, b, _ = runs[0]
  seconds = float(np.median([r[2] for r in runs]))
  return {
    "seconds_steady": seconds,
    "examples_per_second": BATCH * STEPS / seconds,
    "test_accuracy": numpy_floor.accuracy(w, b, datasets.test.images, datasets.test.labels),
  }


def export_figures(model, datasets) -> dict:
  from kmnist.export import saved_model, tflite

  figures = {}
  with tempfile.TemporaryDirectory() as tmp:
    start = time.perf_counter()
    sm_dir = saved_model.export_saved_model(model, Path(tmp) / "saved_model")
    figures["saved_model_export_seconds"] = time.perf_counter() - start
    for variant in tflite.VARIANTS:
      start = time.perf_counter()
      model_bytes = tflite.convert(variant, sm_dir, model, datasets.train.images)
      seconds = time.perf_counter() - start
      batch = datasets.test.images[:1000]
      tflite.predict_tflite(model_bytes, batch)  # warm-up
      batch_times = []
      for _ in range(5):
        start = time.perf_counter()
        tflite.predict_tflite(model_bytes, batch)
        batch_times.append(time.perf_counter() - start)
      figures[f"tflite_{variant}"] = {
        "convert_seconds": seconds,
        "size_bytes": len(model_bytes),
        "single_image_invoke_us": tflite.invoke_latency_us(model_bytes, datasets.test.images[0]),
        "batch_1000_ms": float(np.median(batch_times) * 1000),
      }
  return figures


def main(argv):
  del argv
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  from absl import logging

  logging.set_verbosity(logging.WARNING)
  from kmnist.data import mnist

  if FLAGS.models:
    from benchmarks import models

    datasets = mnist.load(FLAGS.data_dir)
    seeds = [int(seed) for seed in FLAGS.seeds]
    partial = Path(FLAGS.models_out).with_suffix(".partial.json")
    partial.parent.mkdir(parents=True, exist_ok=True)
    figures = models.benchmark(
      stamp.stamp(),
      FLAGS.models,
      seeds,
      datasets,
      FLAGS.data_dir,
      FLAGS.kerasio,
      progress=lambda so_far: partial.write_text(json.dumps(so_far, indent=2) + "\n"),
    )
    write_figures(figures, FLAGS.models_out, models.table(figures))
    print(f"(the picture: {models.draw(figures, Path(FLAGS.models_out).with_suffix('.png'))})")
    return
  figures = {"stamp": stamp.stamp()}
  # The commands first, before this process loads TensorFlow and the data.
  if FLAGS.end_to_end:
    figures["end_to_end"] = command.measure(FLAGS.data_dir, FLAGS.command_repeats)
  datasets = mnist.load(FLAGS.data_dir)
  batches = batch_order(len(datasets.train), FLAGS.seed)
  runs = [kmnist_loop(datasets, FLAGS.seed) for _ in range(FLAGS.repeats)]
  kmnist = sorted(runs, key=lambda r: r["seconds_steady"])[len(runs) // 2]  # the median run
  model = kmnist.pop("model")
  loops = {
    "kmnist": kmnist,
    "numpy": numpy_run(datasets, batches),
    "tf1": tf1_original(datasets, batches),
  }
  loops["kmnist_over_numpy"] = kmnist["examples_per_second"] / loops["numpy"]["examples_per_second"]
  loops["kmnist_over_tf1"] = kmnist["examples_per_second"] / loops["tf1"]["examples_per_second"]
  figures.update(training_loop=loops, export=export_figures(model, datasets))
  if FLAGS.cnn_seeds:
    from benchmarks import cnn_command

    seeds = [int(seed) for seed in FLAGS.cnn_seeds]
    figures["cnn_command"] = cnn_command.measure(datasets, FLAGS.data_dir, seeds)
  write_figures(figures, FLAGS.out, command.table(figures))


def write_figures(figures: dict, path: str, text: str) -> None:
  out = Path(path)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(figures, indent=2) + "\n")
  print(text)
  print(f"\n(figures in {out})")


if __name__ == "__main__":
  app.run(main)
