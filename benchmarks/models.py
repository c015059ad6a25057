"""The model family on this machine: `python -m benchmarks --models=softmax,mlp,cnn,cnn+augment`.

For each model and seed, a default kmnist-train run on the prepared data (`train.run`: training,
every export and its checks) with a clock that stops while the test set is scored after every epoch,
so that the figures say when a model first reaches 99.2 % in training time alone; and, in the same
process on the same machine, the keras-io `mnist_convnet` recipe (benchmarks/kerasio.py) clocked the
same way. Prints a table and writes JSON (`--models_out`).
"""

import os
import platform
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

from benchmarks import command, kerasio
from kmnist.models import metrics
from kmnist.training import train
from kmnist.training.config import TrainConfig
from kmnist.util.errors import KmnistError

TARGETS = (0.990, 0.992)  # time to each is reported; 99.2 %: the keras-io recipe's published figure
TARGET = TARGETS[-1]
EQUAL_TIMES = (10, 30, 60, 120)  # training seconds at which every model's accuracy is compared
# The test set is scored after about every SCORE_EVERY_S of training (and at each epoch's end), and
# four times as often over the first FINE_UNTIL_S, where the CNNs cross the targets.
SCORE_EVERY_S, FINE_UNTIL_S = 2.0, 20.0
KERASIO = "keras-io mnist_convnet"


class EpochClock(keras.callbacks.Callback):
  """Training time so far and the test accuracy after about every SCORE_EVERY_S of training (a
  quarter of it over the first FINE_UNTIL_S), and at every epoch's end; the scoring is not timed."""

  def __init__(self, test, images=None, every_s: float = SCORE_EVERY_S):
    super().__init__()
    self.test, self.images, self.every_s = test, images, every_s
    self.points = []  # (training seconds so far, test accuracy)
    self.training_seconds, self.scored_at = 0.0, 0.0

  def on_train_batch_begin(self, batch, logs=None):
    self.started = time.perf_counter()

  def on_train_batch_end(self, batch, logs=None):
    float((logs or {}).get("loss", 0.0))  # waits for the step: Keras may hand back tensors early
    self.training_seconds += time.perf_counter() - self.started
    every = self.every_s / 4 if self.training_seconds < FINE_UNTIL_S else self.every_s
    if self.training_seconds - self.scored_at >= every:
      self.score()

  def on_epoch_end(self, epoch, logs=None):
    if not self.points or self.points[-1][0] != round(self.training_seconds, 2):
      self.score()

  def score(self):
    images = self.images if self.images is not None else self.test.images.astype("float32") / 255
    accuracy = metrics.accuracy(
      self.model.predict(images, batch_size=1000, verbose=0), self.test.labels
    )
    self.points.append((round(self.training_seconds, 2), accuracy))
    self.scored_at = self.training_seconds

  def seconds_to(self, target: float) -> float | None:
    return seconds_to(self.points, target)


def seconds_to(points, target: float) -> float | None:
  """Training seconds at which the test accuracy first reached `target` (None: never)."""
  return next((seconds for seconds, accuracy in points if accuracy >= target), None)


def accuracy_at(points, seconds: float) -> float | None:
  """The test accuracy after `seconds` of training: the last score at or before then (a run that
  ended sooner keeps its final accuracy); None before the first score."""
  scored = [accuracy for at, accuracy in points if at <= seconds]
  return scored[-1] if scored else None


def run_model(
  name: str, datasets, seed: int, data_dir: str, score_every_s=SCORE_EVERY_S, **overrides
) -> dict:
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
    clock = EpochClock(datasets.test, every_s=score_every_s)
    result = train.run(config, datasets_override=datasets, callbacks=[clock])
  variants = {row["variant"]: row for row in result.tflite_report["variants"]}
  return {
    "model": name,
    "seed": seed,
    "parameters": result.model.count_params(),
    "test_accuracy": result.metrics["test_accuracy"],
    "training_seconds": clock.training_seconds,
    "examples_per_second": config.steps * config.batch_size / clock.training_seconds,
    "seconds_to": {str(t): clock.seconds_to(t) for t in TARGETS},
    "epochs": clock.points,
    "replicas": result.metrics["replicas"],
    "tflite": {
      v: {k: row[k] for k in ("size_bytes", "test_accuracy", "invoke_latency_us")}
      for v, row in variants.items()
    },
    "int8_minus_keras_points": 100
    * (variants["int8"]["test_accuracy"] - result.metrics["test_accuracy"]),
  }


def run_kerasio(
  datasets, seed: int, epochs: int = kerasio.EPOCHS, score_every_s=SCORE_EVERY_S
) -> dict:
  test_images = datasets.test.images[..., None].astype("float32") / 255
  clock = EpochClock(datasets.test, test_images, every_s=score_every_s)
  model = kerasio.train(datasets, seed, [clock], epochs)
  return {
    "model": KERASIO,
    "seed": seed,
    "parameters": model.count_params(),
    "test_accuracy": clock.points[-1][1],
    "training_seconds": clock.training_seconds,
    "examples_per_second": 0.9
    * (len(datasets.train) + len(datasets.validation))
    * epochs
    / clock.training_seconds,
    "seconds_to": {str(t): clock.seconds_to(t) for t in TARGETS},
    "epochs": clock.points,
  }


def devices() -> dict:
  """What the figures were measured on: the processor, its cores, TensorFlow's devices."""
  model = (
    next(
      (
        line.split(":", 1)[1].strip()
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("model name")
      ),
      platform.processor() or "unknown processor",
    )
    if Path("/proc/cpuinfo").is_file()
    else platform.processor()
  )
  return {
    "processor": model,
    "cores": os.cpu_count(),
    "devices": [d.name for d in tf.config.list_logical_devices()],
    "gpus": len(tf.config.list_logical_devices("GPU")),
  }


def benchmark(
  stamp: dict, names, seeds, datasets, data_dir: str, with_kerasio: bool, progress=None
) -> dict:
  """Every run; `progress(figures)` is called after each, so a long benchmark keeps what it has.
  Then each model's whole command, as a user runs it. `stamp` (benchmarks.stamp) says how."""
  figures = {"stamp": stamp, "machine": devices(), "target": TARGET, "runs": [], "commands": {}}
  jobs = [(run_model, (name, datasets, seed, data_dir)) for name in names for seed in seeds]
  jobs += [(run_kerasio, (datasets, seed)) for seed in seeds] if with_kerasio else []
  for job, args in jobs:
    try:
      figures["runs"].append(job(*args))
    except KmnistError as e:  # a run the product refuses is a finding, not the end of the benchmark
      figures["runs"].append({"model": args[0], "seed": args[2], "error": str(e)})
    if progress:
      progress(figures)
  for name in names:
    figures["commands"][name] = whole_command(name, data_dir)
    if progress:
      progress(figures)
  return figures


def whole_command(name: str, data_dir: str) -> float:
  """Wall seconds of `kmnist-train --model=...` in an empty folder (seed 0, data prepared): the
  training, every export and check, the pictures, Python and TensorFlow starting."""
  model, augment = name.split("+")[0], name.endswith("+augment")
  args = [*command.kmnist_train(), f"--model={model}", f"--data_dir={data_dir}"]
  with tempfile.TemporaryDirectory() as tmp:
    seconds, _ = command.timed(args + ["--augment"] * augment, tmp)
  return seconds


def command_line(figures: dict, name: str = "cnn") -> str:
  """The whole command of `name` against keras-io's training time to 99.2 %, seeds that reach it."""
  seconds = figures.get("commands", {}).get(name)
  reference = [
    r["seconds_to"][str(TARGET)]
    for r in by_model(figures).get(KERASIO, [])
    if r["seconds_to"][str(TARGET)] is not None
  ]
  if seconds is None or not reference:
    return ""
  keras_io = float(np.mean(reference))
  return (
    f"`kmnist-train --model={name}` as a whole command (training, exports, checks, pictures, "
    f"start-up): {seconds:.0f} s, **{seconds / keras_io:.2f}x** keras-io's training time to "
    f"{100 * TARGET:.1f} % ({keras_io:.0f} s: the mean of the {len(reference)} seeds reaching it)."
  )


def by_model(figures: dict) -> dict:
  """{model: its runs (one per seed)}, in the order they ran; failed runs left out."""
  grouped = {}
  for run in figures["runs"]:
    if "error" not in run:
      grouped.setdefault(run["model"], []).append(run)
  return grouped


def machine_line(figures: dict) -> str:
  m = figures["machine"]
  return f"{m['processor']}, {m['cores']} cores; devices: {', '.join(m['devices'])}"


def table(figures: dict) -> str:
  """Accuracy, time and the TFLite files per model; then every model's accuracy at equal times."""
  targets = " | ".join(f"s to {100 * t:.1f} %" for t in TARGETS)
  rows = [
    machine_line(figures),
    "",
    f"| model | params | test accuracy (seeds) | mean | training s | examples/s | {targets} "
    "| TFLite float / dynamic / int8 bytes | int8 − Keras | int8 latency |",
    "| --- | ---: | --- | ---: | ---: | ---: | " + "---: | " * len(TARGETS) + "--- | ---: | ---: |",
  ]
  grouped = by_model(figures)
  for name, runs in grouped.items():
    accuracies = [r["test_accuracy"] for r in runs]
    reached = [
      ", ".join(
        "—" if r["seconds_to"][str(t)] is None else f"{r['seconds_to'][str(t)]:.0f}" for r in runs
      )
      for t in TARGETS
    ]
    tfl = runs[0].get("tflite")
    sizes = (
      " / ".join(f"{tfl[v]['size_bytes']:,}" for v in ("float", "dynamic", "int8")) if tfl else ""
    )
    int8 = f"{np.mean([r['int8_minus_keras_points'] for r in runs]):+.2f} pt" if tfl else ""
    latency = f"{tfl['int8']['invoke_latency_us']:.0f} µs" if tfl else ""
    rows.append(
      f"| {name} | {runs[0]['parameters']:,} | {', '.join(f'{a:.4f}' for a in accuracies)} "
      f"| {np.mean(accuracies):.4f} | {np.mean([r['training_seconds'] for r in runs]):.0f} "
      f"| {np.mean([r['examples_per_second'] for r in runs]):,.0f} | {' | '.join(reached)} "
      f"| {sizes} | {int8} | {latency} |"
    )
  rows += [
    "",
    "Test accuracy after equal training time (mean of the seeds; — : not scored yet):",
    "",
  ]
  rows += [
    "| model | " + " | ".join(f"{t} s" for t in EQUAL_TIMES) + " |",
    "| --- | " + "---: | " * len(EQUAL_TIMES),
  ]
  for name, runs in grouped.items():
    cells = []
    for t in EQUAL_TIMES:
      at = [accuracy_at(r["epochs"], t) for r in runs]
      cells.append("—" if None in at else f"{np.mean(at):.4f}")
    rows.append(f"| {name} | {' | '.join(cells)} |")
  whole = command_line(figures)
  rows += ["", whole] if whole else []
  failed = [run for run in figures["runs"] if "error" in run]
  rows += [f"\n{run['model']} seed {run['seed']} failed: {run['error']}" for run in failed]
  return "\n".join(rows)


def draw(figures: dict, path) -> Path:
  """Test accuracy against training seconds, every run on the same axes (a line per seed, a colour
  per model), error on a log scale so that 92 % and 99.7 % both read; written as a PNG."""
  figure = Figure(figsize=(9, 5.5), dpi=110)
  FigureCanvasAgg(figure)
  axes = figure.add_subplot()
  for colour, (name, runs) in enumerate(by_model(figures).items()):
    for i, run in enumerate(runs):
      seconds, accuracy = zip(*run["epochs"], strict=True)
      axes.plot(
        seconds,
        [100 * (1 - a) for a in accuracy],
        color=f"C{colour}",
        alpha=0.85,
        marker=".",
        label=name if i == 0 else None,
      )
  for target in (*TARGETS, 0.997):
    axes.axhline(100 * (1 - target), color="grey", linewidth=0.6, linestyle="--")
    axes.annotate(
      f"{100 * target:.1f} %",
      (1.0, 100 * (1 - target)),
      xycoords=("axes fraction", "data"),
      fontsize=8,
      color="grey",
      ha="right",
      va="bottom",
    )
  axes.set(xscale="log", yscale="log", xlabel="training seconds", ylabel="test error (%)")
  seeds = sorted({run["seed"] for run in figures["runs"]})
  title = f"Test error against training time, seeds {seeds}\n{machine_line(figures)}"
  axes.set_title(title, fontsize=9)
  axes.yaxis.set_major_formatter(ScalarFormatter())
  axes.grid(True, which="both", linewidth=0.3)
  axes.legend(fontsize=8)
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  figure.savefig(path)
  return path
