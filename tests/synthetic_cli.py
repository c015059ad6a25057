"""kmnist-train with conftest's synthetic digits in place of MNIST, for tests that run the CLI in
subprocesses.

With KMNIST_TEST_FAIL_SAVED_MODEL_CHECK set, its SavedModel fails its check. Everything else is
the real command: flags, strategy, training, export, error handling and exit
codes.
    python tests/synthetic_cli.py --strategy=mirrored --cpu_replicas=2 --steps=60 ...
Tests import `command` and `run` from here; the script part runs only as `__main__`.
"""

import os
import subprocess
import sys

PATH = os.path.abspath(__file__)
# The smallest run that trains, checkpoints and exports: two executions of 20 steps.
SMALL_RUN = [
  "--steps=40",
  "--eval_every=20",
  "--steps_per_execution=20",
  "--batch_size=50",
  "--novisualize",
  "--model_dir=run",
  "--export_dir=exported",
]


def command(*flags: str) -> list[str]:
  return [sys.executable, PATH, *flags]


def run(*flags: str, cwd, timeout: int = 300, **kwargs) -> subprocess.CompletedProcess:
  """Runs the synthetic kmnist-train in `cwd` and returns what it printed, as text."""
  return subprocess.run(
    command(*flags), capture_output=True, text=True, cwd=cwd, timeout=timeout, **kwargs
  )


if __name__ == "__main__":
  sys.path.insert(0, os.path.dirname(PATH))  # for conftest
  from kmnist.util import console

  console.quiet_stderr()  # before TensorFlow loads (conftest imports it), as the commands do

  from kmnist.cli import train as train_cli
  from kmnist.data import mnist

  from conftest import make_synthetic_datasets

  mnist.load = lambda *args, **kwargs: make_synthetic_datasets()
  if os.environ.get("KMNIST_TEST_FAIL_SAVED_MODEL_CHECK"):  # an export whose check fails
    from kmnist.export import exporter
    from kmnist.util.errors import KmnistError

    checked = exporter.check_outputs

    def failing(what, *args):
      if what == "saved_model":
        raise KmnistError(
          "saved_model: made to fail its check (KMNIST_TEST_FAIL_SAVED_MODEL_CHECK)"
        )
      return checked(what, *args)

    exporter.check_outputs = failing
  train_cli.cli()
