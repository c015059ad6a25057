import types

import pytest
import tensorflow as tf

from kmnist import distribute
from kmnist.errors import KmnistError


@pytest.mark.parametrize("name, expected", [
    ("auto", tf.distribute.Strategy),  # no GPU here: the default strategy
    ("default", tf.distribute.Strategy),
    ("one_device", tf.distribute.OneDeviceStrategy),
    ("mirrored", tf.distribute.MirroredStrategy),
])
def test_make_strategy(name, expected):
  strategy = distribute.make_strategy(name)
  assert isinstance(strategy, expected)
  assert strategy.num_replicas_in_sync >= 1


def test_auto_without_gpus_is_the_default_strategy():
  if tf.config.list_logical_devices("GPU"):
    assert isinstance(distribute.make_strategy("auto"), tf.distribute.MirroredStrategy)
  else:
    assert distribute.make_strategy("auto") is tf.distribute.get_strategy()


def test_unknown_strategy_is_refused():
  with pytest.raises(KmnistError, match="--strategy=tpu9"):
    distribute.make_strategy("tpu9")


def test_global_batch_must_split_evenly_over_replicas():
  three_replicas = types.SimpleNamespace(num_replicas_in_sync=3)
  assert distribute.check_global_batch(99, three_replicas) == 33
  with pytest.raises(KmnistError, match=r"--batch_size=100 .* divisible by the 3 replicas"):
    distribute.check_global_batch(100, three_replicas)
