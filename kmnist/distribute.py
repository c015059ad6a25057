"""Choosing the `tf.distribute` strategy the model is built and trained under."""

import tensorflow as tf

from kmnist.config import STRATEGIES
from kmnist.errors import KmnistError


def make_strategy(name: str) -> tf.distribute.Strategy:
  """`auto`: every GPU mirrored if there are any, else the default (no-op) strategy."""
  gpus = tf.config.list_logical_devices("GPU")
  if name == "auto":
    return tf.distribute.MirroredStrategy() if gpus else tf.distribute.get_strategy()
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "one_device":
    return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
  if name == "mirrored":
    return tf.distribute.MirroredStrategy()
  raise KmnistError(f"--strategy={name} is not known; use one of {', '.join(STRATEGIES)}")


def check_global_batch(batch_size: int, strategy: tf.distribute.Strategy) -> int:
  """Returns the per-replica batch; the global batch must split evenly so every replica does equal work."""
  replicas = strategy.num_replicas_in_sync
  if batch_size % replicas:
    raise KmnistError(
        f"--batch_size={batch_size} is the global batch and must be divisible by the {replicas} replicas "
        f"of this strategy; use a multiple of {replicas}")
  return batch_size // replicas
