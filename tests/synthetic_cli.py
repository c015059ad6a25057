"""kmnist-train with conftest's synthetic digits in place of MNIST, for tests that run the CLI in
subprocesses.

Everything else is the real command: flags, strategy, training, export, error handling and exit
codes.
    python tests/synthetic_cli.py --strategy=mirrored --cpu_replicas=2 --steps=60 ...
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for conftest

from kmnist import console  # noqa: E402

console.quiet_stderr()  # before TensorFlow loads (conftest imports it), as the commands do

from kmnist import data  # noqa: E402
from kmnist.cli import train as train_cli  # noqa: E402

from conftest import make_synthetic_datasets  # noqa: E402

if __name__ == "__main__":
  data.load = lambda *args, **kwargs: make_synthetic_datasets()
  train_cli.cli()
