"""Shared fixtures: small learnable synthetic data for fast tests, the real vendored MNIST for
slow ones."""

import fcntl
import gzip
import os
import socket
from unittest import mock

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from hypothesis import settings  # noqa: E402

from kmnist.data import mnist, mnist_files, spec, splits  # noqa: E402
from kmnist.models import registry  # noqa: E402
from kmnist.training import optimization, train  # noqa: E402
from kmnist.training.config import TrainConfig  # noqa: E402

# Property-based tests run in the fast suite: the same examples every run (derandomized: a fixed
# seed), a budget per test (max_examples), no deadline (timings on a shared machine are noise).
settings.register_profile("kmnist", derandomize=True, deadline=None, database=None)
settings.load_profile("kmnist")


def synthetic_split(n: int, seed: int) -> splits.Split:
  """Digits-like data a softmax regression can learn: one fixed random stroke pattern per class,
  plus noise."""
  prototypes = np.random.RandomState(1234).rand(spec.NUM_CLASSES, *spec.IMAGE_SHAPE) < 0.2
  rng = np.random.RandomState(seed)
  labels = rng.randint(0, spec.NUM_CLASSES, n).astype(np.int64)
  images = prototypes[labels] * 180 + rng.randint(0, 75, (n,) + spec.IMAGE_SHAPE)
  return splits.Split(images=images.astype(np.uint8), labels=labels)


def make_synthetic_datasets() -> splits.Datasets:
  return splits.Datasets(
    train=synthetic_split(2000, 1),
    validation=synthetic_split(200, 2),
    test=synthetic_split(500, 3),
  )


@pytest.fixture(scope="session")
def synthetic_datasets() -> splits.Datasets:
  return make_synthetic_datasets()


@pytest.fixture(scope="session")
def trained_models(synthetic_datasets) -> dict:
  """Every model fitted for one short epoch on the synthetic digits (read-only: shared)."""
  fitted = {}
  train = synthetic_datasets.train
  for name in ("mlp", "cnn"):
    keras.utils.set_random_seed(0)
    config = TrainConfig(model=name, steps=40, warmup_steps=5, eval_every=40)
    model = optimization.compile_model(registry.build(name), config)
    model.fit(train.images / 255.0, np.eye(10)[train.labels], epochs=1, batch_size=50, verbose=0)
    fitted[name] = model
  return fitted


@pytest.fixture(scope="session")
def trained_model(synthetic_datasets):
  """A softmax regression fitted for one epoch on the synthetic digits (read-only: tests share
  it)."""
  model = optimization.compile_model(registry.build(), TrainConfig())
  train = synthetic_datasets.train
  model.fit(train.images / 255.0, np.eye(10)[train.labels], epochs=1, batch_size=100, verbose=0)
  return model


@pytest.fixture(scope="session")
def classifier_bundles(trained_model, synthetic_datasets) -> dict:
  """The softmax regression's image-classifier bundles {variant: bytes}, metadata included."""
  from kmnist.export import bundle, formats, record

  about = record.make(registry.get("softmax"), training_flags={})
  return {
    variant: bundle.with_metadata(
      bundle.convert(variant, trained_model, synthetic_datasets.train.images), variant, about, 1
    )
    for variant in formats.CLASSIFIER_VARIANTS
  }


def read_mnist_test_digits(n: int) -> splits.Split:
  """The first `n` digits of the MNIST test file shipped with kmnist, read directly (no TFDS)."""

  def read(name: str, skip: int) -> np.ndarray:
    with gzip.open(mnist_files.VENDORED_DIR / name) as f:
      return np.frombuffer(f.read(), np.uint8, offset=skip)

  images = read("t10k-images-idx3-ubyte.gz", 16).reshape(-1, *spec.IMAGE_SHAPE)[:n]
  labels = read("t10k-labels-idx1-ubyte.gz", 8)[:n].astype(np.int64)
  return splits.Split(images=images.copy(), labels=labels)


@pytest.fixture(scope="session")
def mnist_digits() -> splits.Split:
  """Real handwriting, for what users give kmnist-predict: the synthetic digits are random strokes,
  which its blank-and-noise check refuses as noise."""
  return read_mnist_test_digits(100)


class NetworkAccessError(AssertionError):
  pass


LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _loopback_only(original, address_of):
  """`original`, refusing any address but this machine's: the tests' own servers and clusters run
  on 127.0.0.1, and nothing else may be reached."""

  def guarded(*args, **kwargs):
    address = address_of(*args)
    host = address[0] if isinstance(address, tuple) else address
    if host not in LOOPBACK:
      raise NetworkAccessError(f"test tried to reach the network: {address!r}")
    return original(*args, **kwargs)

  return guarded


@pytest.fixture(scope="session")
def no_network():
  """Any socket connection beyond 127.0.0.1 fails loudly: proves a code path is offline."""
  with (
    mock.patch.object(
      socket.socket, "connect", _loopback_only(socket.socket.connect, lambda s, a: a)
    ),
    mock.patch.object(
      socket, "create_connection", _loopback_only(socket.create_connection, lambda a, *_: a)
    ),
    mock.patch.object(socket, "getaddrinfo", _loopback_only(socket.getaddrinfo, lambda h, *_: h)),
  ):
    yield


@pytest.fixture(scope="session")
def real_data_dir(tmp_path_factory, no_network) -> str:
  """A TFDS data_dir with `mnist` prepared from the files vendored in kmnist, with the network
  refused: once per test session, by whichever xdist worker asks first (the other waits for it,
  then reads the decoded-split cache in a fraction of a second)."""
  base = tmp_path_factory.getbasetemp()
  session = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # shared by workers
  with open(session / "tensorflow_datasets.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    mnist.load(data_dir=str(session / "tensorflow_datasets"))  # prepares it the first time (~13 s)
  return str(session / "tensorflow_datasets")


@pytest.fixture(scope="session")
def real_datasets(real_data_dir) -> splits.Datasets:
  return mnist.load(data_dir=real_data_dir)


@pytest.fixture(scope="session")
def real_run(tmp_path_factory, real_data_dir):
  """A default kmnist-train run (seed 0) on the real MNIST, into temporary directories."""
  tmp = tmp_path_factory.mktemp("real_run")
  return train.run(
    TrainConfig(
      data_dir=real_data_dir, model_dir=str(tmp / "run"), export_dir=str(tmp / "exported")
    )
  )


def pytest_collection_modifyitems(items):
  """The tests of the default real-data run share one xdist worker, which makes the run once; the
  other real-data tests go to either (they share the prepared data: real_data_dir)."""
  for item in items:
    if "real_run" in getattr(item, "fixturenames", ()) and not item.get_closest_marker(
      "xdist_group"
    ):
      item.add_marker(pytest.mark.xdist_group("real_run"))
