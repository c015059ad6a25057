"""The `tf.distribute` strategy a model is built and trained under, and who writes the outputs.

One device, every GPU of a machine (`mirrored`), several machines (`multi_worker`, cluster from
TF_CONFIG) or a TPU: the same training code runs under each, and `--batch_size` is always the global
batch.
"""

import contextlib
import json
import re

import numpy as np
import tensorflow as tf

from kmnist.util.errors import KmnistError, one_line

# Errors TensorFlow raises in a worker when a peer of a multi-worker cluster dies or stops
# answering.
LOST_PEER_ERRORS = (
  tf.errors.UnavailableError,
  tf.errors.DeadlineExceededError,
  tf.errors.AbortedError,
  tf.errors.CancelledError,
)


def split_cpu(replicas: int) -> None:
  """Splits the CPU into logical devices, so `mirrored` runs that many replicas on one machine.

  Must run before TensorFlow initialises its devices (its first op), so `train.run` calls it first.
  """
  if replicas == 1:
    return
  cpu = tf.config.list_physical_devices("CPU")[0]
  try:
    tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * replicas
    )
  except RuntimeError as e:  # TensorFlow already started in this process: its devices are fixed.
    raise KmnistError(
      f"--cpu_replicas={replicas} must take effect before TensorFlow starts, but it has already "
      f"started in this process ({e}); run kmnist-train in a fresh process"
    ) from None


def local_devices() -> list[str]:
  """The devices one machine mirrors over: every GPU if there are any, else every logical CPU."""
  devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
  return [d.name for d in devices]


def make_strategy(name: str) -> tf.distribute.Strategy:
  """The strategy named by --strategy (one of config.STRATEGIES, checked there).

  `auto`: mirrored over this machine's devices if there is more than one (or any GPU), else the
  default.
  """
  # Cluster strategies first: they must start before anything (even listing devices) starts
  # TensorFlow.
  if name == "multi_worker":
    return multi_worker_strategy()
  if name == "tpu":
    return tpu_strategy()
  gpus = tf.config.list_logical_devices("GPU")
  if name == "auto" and not (gpus or len(local_devices()) > 1):
    return tf.distribute.get_strategy()
  if name in ("auto", "mirrored"):
    return tf.distribute.MirroredStrategy(local_devices())
  if name == "one_device":
    return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
  return tf.distribute.get_strategy()  # "default"


def multi_worker_strategy() -> tf.distribute.Strategy:
  try:
    return MultiWorkerMirroredStrategy()
  # e.g. "Could not start gRPC server": the port is taken.
  except (tf.errors.OpError, RuntimeError) as e:
    raise KmnistError(
      f"could not start this worker of the TF_CONFIG cluster ({one_line(e)}); check that "
      f"TF_CONFIG gives this machine's address with a free port, and start kmnist-train in a "
      f"fresh process"
    ) from None


class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
  """TensorFlow's strategy, with a `reduce` that takes nested values as Keras 3's `fit` passes them.

  Keras 3 reduces its first input batch, an (images, labels) pair, before training, and its scalar
  metrics along axis 0 after every step; TensorFlow's multi-worker `reduce` accepts neither, so
  stock Keras 3 cannot `fit` under it (keras-team/keras#20585, tensorflow/tensorflow#72388). The
  results are checked against one device in tests/test_training_distribute_runs.py.
  """

  def reduce(self, reduce_op, value, axis=None):
    def reduce_one(v):
      # Keras also asks for axis=0 on its scalar per-step metrics; a scalar reduces across replicas
      # with None.
      scalar = tf.convert_to_tensor(self.experimental_local_results(v)[0]).shape.rank == 0
      return super(MultiWorkerMirroredStrategy, self).reduce(reduce_op, v, None if scalar else axis)

    return tf.nest.map_structure(reduce_one, value)


def tpu_strategy() -> tf.distribute.Strategy:
  try:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver.connect()
    return tf.distribute.TPUStrategy(resolver)
  # No TPU shows up in many ways: ValueError, NotFoundError, ...
  except Exception as e:  # pylint: disable=broad-except
    raise KmnistError(
      f"--strategy=tpu: no TPU is reachable from this machine ({type(e).__name__}: {e}); "
      f"run on a Cloud TPU VM (or set TPU_NAME), or use --strategy=auto"
    ) from None


def cluster_task(strategy: tf.distribute.Strategy) -> tuple[str, int] | None:
  """(task type, index) of this process in its cluster, or None when it trains alone."""
  resolver = strategy.cluster_resolver
  if resolver is None or not resolver.cluster_spec().as_dict():
    return None
  return resolver.task_type, resolver.task_id


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """Whether this process writes the run's outputs: always, but on a cluster's non-chief workers.

  The chief is the task of type `chief`, or `worker` 0 when the cluster has no `chief`
  (TensorFlow's rule).
  """
  task = cluster_task(strategy)
  if task is None:
    return True
  has_chief = "chief" in strategy.cluster_resolver.cluster_spec().as_dict()
  return task[0] == "chief" or (task == ("worker", 0) and not has_chief)


@contextlib.contextmanager
def lost_peers_reported(strategy: tf.distribute.Strategy):
  """In a cluster, turns TensorFlow's errors when a peer dies into one line naming the peer.

  TensorFlow's coordination service notices a dead worker when its heartbeats stop for 10 s (its
  default) and aborts every collective operation on the other workers; a dead chief is noticed as
  soon as the connection drops.
  """
  try:
    yield
  except LOST_PEER_ERRORS as e:
    task = cluster_task(strategy)
    if task is None:
      raise
    peer = lost_peer(str(e), own_task=task)
    # TensorFlow's first line is often just "Graph execution error:"; its log above has the details.
    raise LostPeerError(
      f"lost {peer or 'another worker'} of the multi-worker cluster ({type(e).__name__}), so "
      "training cannot go on; every worker must run until the end: restart all of them",
      peer,
      type(e).__name__,
    ) from None


class LostPeerError(KmnistError):
  """A peer of the cluster is lost: `peer` ("/job:worker/task:1") names it when TensorFlow did, and
  `cause` is TensorFlow's error. Its arguments are all three, so it pickles (Ray sends it back)."""

  def __init__(self, message: str, peer: str | None, cause: str):
    super().__init__(message, peer, cause)
    self.peer, self.cause = peer, cause

  def __str__(self):
    return self.args[0]


def lost_peer(message: str, own_task: tuple[str, int]) -> str | None:
  """The first task a TensorFlow error names that is not this process: "/job:worker/task:1"."""
  for job, index in re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)", message):
    if (job, int(index)) != tuple(own_task):
      return f"/job:{job}/task:{index}"
  return None


def check_global_batch(batch_size: int, strategy: tf.distribute.Strategy) -> int:
  """The per-replica batch; the global batch must split evenly, so every replica does equal work."""
  replicas = strategy.num_replicas_in_sync
  if batch_size % replicas:
    raise KmnistError(
      f"--batch_size={batch_size} is the global batch and must be divisible by the {replicas} "
      f"replicas of this strategy; use a multiple of {replicas}"
    )
  return batch_size // replicas


AGREEMENT_BYTES = 4096  # room for each worker's values, as JSON


def check_workers_agree(strategy: tf.distribute.Strategy, values: dict) -> None:
  """In a cluster, stops every worker whose `values` (the flags that decide the weights, kmnist,
  the data) differ from another's, naming the first difference, before any training step.

  Workers started differently would otherwise train one silently wrong model together (the
  gradients of different batches or learning rates summed). Each worker's values, as JSON, are
  all-gathered with `strategy.gather`: the same collectives training uses, so if the check can
  run, training could have, and a worker that never comes is reported as a lost peer.
  """
  task = cluster_task(strategy)
  if task is None:
    return
  mine = json.dumps(values, sort_keys=True).encode()
  if len(mine) > AGREEMENT_BYTES:
    raise ValueError(f"{len(mine)} bytes of values to agree on; at most {AGREEMENT_BYTES}")
  row = np.zeros((1, AGREEMENT_BYTES + 2), np.int32)
  row[0, :2] = task[1], task[0] == "chief"
  row[0, 2 : 2 + len(mine)] = np.frombuffer(mine, np.uint8)
  gathered = strategy.gather(
    strategy.experimental_distribute_values_from_function(lambda _: tf.constant(row)), axis=0
  )
  for index, is_chief, *data in strategy.experimental_local_results(gathered)[0].numpy():
    theirs = json.loads(bytes(np.array(data, np.uint8)).rstrip(b"\0"))
    if theirs != values:
      who = "the chief" if is_chief else f"worker {index}"
      raise KmnistError(
        f"this worker ({task[0]} {task[1]}) and {who} of the TF_CONFIG cluster were started "
        f"differently: {first_difference(values, theirs)}; start every worker with the same "
        "flags, the same kmnist and the same MNIST files"
      )


def first_difference(mine: dict, theirs: dict) -> str:
  key = next(k for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k))
  name = {"kmnist": "kmnist", "data": "the training data (sha256)"}.get(key, f"--{key}")
  return f"{name} is {mine.get(key)} here, {theirs.get(key)} there"
