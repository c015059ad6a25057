"""kmnist-train: train a model (the tutorial's by default), evaluate it, export it for serving.

    kmnist-train                   # the tutorial: 1000 steps x 100 examples, SGD at 0.5, ~92 %
    kmnist-train --model=cnn       # a small convolutional network, ~99.4 %
    kmnist-train --flagfile=FILE   # any flag below, one per line
    kmnist-train --ray_workers=2   # on 2 Ray workers: a local Ray, or --ray_address's cluster

The flags are made from TrainConfig's fields (kmnist.cli.common.define_config_flags), so a
setting is declared once; everything from `kmnist.training.train.run` down takes plain values.
"""

import gc

from absl import app, flags

from kmnist.cli import common
from kmnist.training import strategies
from kmnist.util.errors import KmnistError
from kmnist.util.stopwatch import Stopwatch


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  """All of kmnist-train's flags: one per TrainConfig field."""
  common.define_config_flags(fv)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}; kmnist-train takes only --flags")
  clock = Stopwatch()
  with clock("import"):
    config = common.config_from_flags(flags.FLAGS).validate().check_paths()
    with common.without_pandas():
      from kmnist.export import report
      from kmnist.training import train  # TensorFlow loads here, after the quick checks above.
    from kmnist.util import console

    engine = ray_train() if config.ray_workers else train  # Ray Train imports pandas itself
  # What is loaded now lives as long as the process: out of the garbage collector's sight, so its
  # collections (the TFLite converter forces one per file) stop walking a million objects of
  # TensorFlow's, ~0.2 s each.
  gc.freeze()
  result = engine.run(config, log=print, progress=console.Progress, clock=clock)
  m = result.metrics
  print(f"test accuracy: {m['test_accuracy']:.4f}  test loss: {m['test_loss']:.4f}")
  if result.saved_model_dir is None:
    print("non-chief worker: done; the chief wrote metrics.json and the exports")
    return
  print(f"SavedModel: {result.saved_model_dir}")
  print(report.markdown(result.tflite_report), end="")
  if result.pictures:
    print(f"Pictures: {', '.join(str(p) for p in result.pictures.values())}")
  print(seconds_line(clock))


def seconds_line(clock: Stopwatch) -> str:
  """Where the run's seconds went, by stage (metrics.json's "seconds" has each export and check)."""
  stages = {
    "import": clock.total("import"),
    "data": clock.total("data"),
    "training": clock.total("training"),
    "evaluation": clock.total("evaluation"),
    "exports and their checks": clock.total("export:"),
    "pictures": clock.total("pictures"),
    "Ray": clock.total("ray"),  # a Ray run: starting Ray and its workers (their stages above)
  }
  parts = ", ".join(f"{name} {s:.1f}" for name, s in stages.items() if s)
  return f"Seconds: {sum(clock.seconds.values()):.1f} ({parts})"


def ray_train():
  """kmnist.training.ray_train, or the extra to install when Ray (or its `train` part) is not."""
  try:
    from kmnist.training import ray_train
  except ImportError as e:
    raise KmnistError(f"--ray_workers needs Ray Train ({e}): {strategies.RAY_EXTRA}") from None
  return ray_train


def cli():
  """Console-script entry point (`kmnist-train`)."""
  common.run_command("kmnist-train", define_flags, main)


if __name__ == "__main__":
  cli()
