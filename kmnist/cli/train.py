"""kmnist-train: train a model (the tutorial's by default), evaluate it, export it for serving.

    kmnist-train                   # the tutorial: 1000 steps x 100 examples, SGD at 0.5, ~92 %
    kmnist-train --model=cnn       # a small convolutional network, ~99.4 %
    kmnist-train --flagfile=FILE   # any flag below, one per line
    kmnist-train --ray_workers=2   # on 2 Ray workers: a local Ray, or --ray_address's cluster

The flags are made from TrainConfig's fields (kmnist.cli.common.define_config_flags), so a
setting is declared once; everything from `kmnist.training.train.run` down takes plain values.
"""

import time

from absl import app, flags

from kmnist.cli import common
from kmnist.training import strategies
from kmnist.util.errors import KmnistError


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  """All of kmnist-train's flags: one per TrainConfig field."""
  common.define_config_flags(fv)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}; kmnist-train takes only --flags")
  start = time.time()
  config = common.config_from_flags(flags.FLAGS).validate().check_paths()
  from kmnist.export import report
  from kmnist.training import train  # TensorFlow loads here, after the quick checks above.
  from kmnist.util import console

  if config.ray_workers:
    result = ray_train().run(config, log=print, progress=console.Progress)
  else:
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
