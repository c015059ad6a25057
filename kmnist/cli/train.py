"""kmnist-train: train a model (the tutorial's by default), evaluate it, export it for serving.

    kmnist-train                   # the tutorial: 1000 steps x 100 examples, SGD at 0.5, ~92 %
    kmnist-train --model=cnn       # a small convolutional network, ~99.4 %
    kmnist-train --flagfile=FILE   # any flag below, one per line

Flags are defined here and only here, with TrainConfig's defaults (a model's schedule where a flag
is left unset); everything from `kmnist.train.run` down takes plain values.
"""

import dataclasses
import time

from absl import app, flags

from kmnist.cli import common
from kmnist.config import (
  LR_SCHEDULES,
  MODELS,
  OPTIMIZERS,
  SCHEDULES,
  STRATEGIES,
  TrainConfig,
)

_DEFAULTS = TrainConfig()
_PER_MODEL = "default: the model's (see --model)"


def describe_schedules() -> str:
  """The models' default schedules, one per model, for --help."""
  lines = []
  for (model, augment), s in SCHEDULES.items():
    if model == "softmax" and augment:
      continue
    warmup = f", warmup {s.warmup_steps}" if s.warmup_steps else ""
    warmup += f", label smoothing {s.label_smoothing:g}" if s.label_smoothing else ""
    lines.append(
      f"{model}{' --augment' if augment else ''}: {s.steps} steps of {s.batch_size}, "
      f"{s.optimizer} at "
      f"{s.learning_rate:g} ({s.lr_schedule}{warmup}), validation every {s.eval_every}"
    )
  return "; ".join(lines)


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  """All of kmnist-train's flags, with TrainConfig's defaults."""
  d = _DEFAULTS

  def define(kind, name, default, help_text, **kwargs):
    getattr(flags, f"DEFINE_{kind}")(name, default, help=help_text, flag_values=fv, **kwargs)

  define(
    "enum",
    "model",
    d.model,
    f"The model to train, with its default schedule: {describe_schedules()}.",
    enum_values=MODELS,
  )
  define(
    "boolean",
    "augment",
    d.augment,
    "Train on randomly shifted and rotated digits (seeded: reruns and resumed runs see the same "
    "ones); the model's own schedule for it.",
  )
  define("integer", "steps", None, f"Training steps (optimizer updates) in total; {_PER_MODEL}.")
  define(
    "integer",
    "batch_size",
    None,
    f"Global batch size, split evenly over the replicas; {_PER_MODEL}.",
  )
  define("enum", "optimizer", None, f"Optimizer; {_PER_MODEL}.", enum_values=OPTIMIZERS)
  define("float", "learning_rate", None, f"Learning rate (the peak, on a schedule); {_PER_MODEL}.")
  define(
    "enum",
    "lr_schedule",
    None,
    "constant, or cosine (linear warmup over --warmup_steps, then cosine decay to 0); "
    f"{_PER_MODEL}.",
    enum_values=LR_SCHEDULES,
  )
  define(
    "float",
    "label_smoothing",
    None,
    f"Share of each label spread evenly over the ten digits (regularises); {_PER_MODEL}.",
  )
  define(
    "integer",
    "warmup_steps",
    None,
    f"Steps of linear learning-rate warmup (cosine); {_PER_MODEL}.",
  )
  define(
    "integer",
    "eval_every",
    None,
    f"Steps between validation passes (one Keras epoch); must divide --steps; {_PER_MODEL}.",
  )
  define(
    "integer",
    "seed",
    d.seed,
    "Seed of the batch order, the initial weights and the augmentation.",
  )
  define(
    "integer",
    "steps_per_execution",
    d.steps_per_execution,
    "Steps run per call into the compiled graph (speed only; results are identical); lowered to "
    "a "
    "divisor of --eval_every.",
  )
  define(
    "enum",
    "strategy",
    d.strategy,
    "tf.distribute strategy: auto = mirrored over this machine's GPUs (or --cpu_replicas CPUs) "
    "if any, "
    "else default; multi_worker = MultiWorkerMirroredStrategy, cluster from TF_CONFIG.",
    enum_values=STRATEGIES,
  )
  define(
    "integer",
    "cpu_replicas",
    d.cpu_replicas,
    "Split the CPU into this many logical devices before TensorFlow starts, so mirrored runs "
    "that "
    "many replicas on one machine (to try distribution without GPUs).",
  )
  common.define_data_flags(fv)
  define(
    "string",
    "model_dir",
    None,
    "Run directory: checkpoints (a rerun with the same flags resumes), metrics.json, "
    "MANIFEST.json, "
    "the pictures and the TensorBoard logs (<model_dir>/logs); default: runs/kmnist for the "
    "tutorial's model, runs/kmnist-<model>[-augment] for the others.",
  )
  define(
    "string",
    "export_dir",
    d.export_dir,
    "Export base: SavedModel in <export_dir>/saved_model/<version>/, TFLite in "
    "<export_dir>/tflite/<version>/.",
  )
  define(
    "boolean",
    "restart",
    d.restart,
    "Discard the checkpoints in --model_dir and train from step 0 (default: resume them).",
  )
  define(
    "integer",
    "export_version",
    d.export_version,
    "Version number of the export; default: one past the highest existing.",
  )
  define(
    "boolean",
    "visualize",
    d.visualize,
    "Draw the pictures (what the model learned, the confusion matrix, the surest mistakes) into "
    "--model_dir after training; --novisualize skips them.",
  )
  define(
    "list",
    "tflite",
    ",".join(d.tflite),
    "TFLite variants to export, comma-separated: float, dynamic (dynamic-range quantized), int8 "
    "(full integer).",
  )


def config_from_flags(fv: flags.FlagValues = flags.FLAGS) -> TrainConfig:
  values = {field.name: fv[field.name].value for field in dataclasses.fields(TrainConfig)}
  return TrainConfig(**{name: tuple(v) if isinstance(v, list) else v for name, v in values.items()})


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}; kmnist-train takes only --flags")
  start = time.time()
  config = config_from_flags().validate().check_paths()
  from kmnist import console, train  # TensorFlow loads here, after the quick checks above.
  from kmnist.export import report

  result = train.run(config, log=print, progress=console.Progress)
  m = result.metrics
  print(
    f"test accuracy: {m['test_accuracy']:.4f}  test loss: {m['test_loss']:.4f}  "
    f"({time.time() - start:.1f} s)"
  )
  if result.saved_model_dir is None:
    print("non-chief worker: done; the chief wrote metrics.json and the exports")
    return
  print(f"SavedModel: {result.saved_model_dir}")
  print(report.markdown(result.tflite_report), end="")
  if result.pictures:
    print(
      f"Pictures: {', '.join(str(p) for p in result.pictures.values())}  "
      f"({result.pictures_seconds:.1f} s)"
    )


def cli():
  """Console-script entry point (`kmnist-train`)."""
  common.run_command("kmnist-train", define_flags, main)


if __name__ == "__main__":
  cli()
