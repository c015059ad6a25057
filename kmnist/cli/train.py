"""kmnist-train: train the tutorial's softmax regression, evaluate it, export it for serving and for
phones.

    kmnist-train                       # the tutorial: 1000 steps x 100 examples, SGD at 0.5, ~92 %
    test accuracy kmnist-train --flagfile=my.flags   # any flag below, one per line

Flags are defined here and only here, with TrainConfig's defaults; everything from
`kmnist.train.run` down takes plain values.
"""

import dataclasses
import time

from absl import app, flags

from kmnist.cli import common
from kmnist.config import STRATEGIES, TrainConfig

_DEFAULTS = TrainConfig()


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  """All of kmnist-train's flags, with TrainConfig's defaults."""
  d = _DEFAULTS
  flags.DEFINE_integer("steps", d.steps, "Training steps (SGD updates) in total.", flag_values=fv)
  flags.DEFINE_integer(
      "batch_size",
      d.batch_size,
      "Global batch size: split evenly over the replicas.",
      flag_values=fv,
  )
  flags.DEFINE_float("learning_rate", d.learning_rate, "SGD learning rate.", flag_values=fv)
  flags.DEFINE_integer(
      "seed", d.seed, "Seed for the shuffle order (weights start at zero).", flag_values=fv
  )
  flags.DEFINE_integer(
      "eval_every",
      d.eval_every,
      "Steps between validation evaluations (one Keras epoch); must divide --steps.",
      flag_values=fv,
  )
  flags.DEFINE_integer(
      "steps_per_execution",
      d.steps_per_execution,
      "Steps run per call into the compiled graph (speed only; results are identical); "
      "lowered to a divisor of --eval_every.",
      flag_values=fv,
  )
  flags.DEFINE_enum(
      "strategy",
      d.strategy,
      STRATEGIES,
      "tf.distribute strategy: auto = mirrored over this machine's GPUs (or --cpu_replicas CPUs) "
      "if "
      "any, else default; multi_worker = MultiWorkerMirroredStrategy, cluster from TF_CONFIG.",
      flag_values=fv,
  )
  flags.DEFINE_integer(
      "cpu_replicas",
      d.cpu_replicas,
      "Split the CPU into this many logical devices before TensorFlow starts, so mirrored runs "
      "that many replicas on one machine (to try distribution without GPUs).",
      flag_values=fv,
  )
  common.define_data_flags(fv)
  flags.DEFINE_string(
      "model_dir",
      d.model_dir,
      "Run directory: checkpoints (a rerun with the same flags resumes), metrics.json, "
      "MANIFEST.json, "
      "the pictures and the TensorBoard logs (<model_dir>/logs).",
      flag_values=fv,
  )
  flags.DEFINE_string(
      "export_dir",
      d.export_dir,
      "Export base: SavedModel in <export_dir>/saved_model/<version>/, TFLite in "
      "<export_dir>/tflite/<version>/.",
      flag_values=fv,
  )
  flags.DEFINE_boolean(
      "restart",
      d.restart,
      "Discard the checkpoints in --model_dir and train from step 0 (default: resume them).",
      flag_values=fv,
  )
  flags.DEFINE_integer(
      "export_version",
      d.export_version,
      "Version number of the export; default: one past the highest existing.",
      flag_values=fv,
  )
  flags.DEFINE_boolean(
      "visualize",
      d.visualize,
      "Draw weights.png, confusion_matrix.png and mistakes.png into --model_dir after training; "
      "--novisualize skips them.",
      flag_values=fv,
  )
  flags.DEFINE_list(
      "tflite",
      ",".join(d.tflite),
      "TFLite variants to export, comma-separated: float, dynamic (dynamic-range quantized), int8 "
      "(full integer).",
      flag_values=fv,
  )


def config_from_flags(fv: flags.FlagValues = flags.FLAGS) -> TrainConfig:
  values = {field.name: fv[field.name].value for field in dataclasses.fields(TrainConfig)}
  return TrainConfig(**{name: tuple(v) if isinstance(v, list) else v for name, v in values.items()})


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}; kmnist-train takes only --flags")
  start = time.time()
  config = config_from_flags().validate().check_paths()
  from kmnist import train  # TensorFlow loads here, after the quick checks above.
  from kmnist.export import report

  result = train.run(config, log=print)
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
