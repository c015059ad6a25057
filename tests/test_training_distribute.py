"""Strategy choice, chief election, replica batches and lost-peer reports, in this process.

The runs on several replicas and workers need a fresh process each (devices and clusters are fixed
when TensorFlow starts): they are in test_training_distribute_runs.py.
"""

import json
import re
import types

import numpy as np
import pytest
import tensorflow as tf

from kmnist.training import distribute
from kmnist.util.errors import KmnistError


@pytest.mark.parametrize(
  "name, expected",
  [
    ("auto", tf.distribute.Strategy),  # no GPU here: the default strategy
    ("default", tf.distribute.Strategy),
    ("one_device", tf.distribute.OneDeviceStrategy),
    ("mirrored", tf.distribute.MirroredStrategy),
    (
      "multi_worker",
      tf.distribute.MultiWorkerMirroredStrategy,
    ),  # without TF_CONFIG: a cluster of one
  ],
)
def test_make_strategy(name, expected, monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)
  strategy = distribute.make_strategy(name)
  assert isinstance(strategy, expected)
  assert strategy.num_replicas_in_sync >= 1
  assert distribute.is_chief(strategy)


def test_auto_without_gpus_is_the_default_strategy():
  if tf.config.list_logical_devices("GPU"):
    assert isinstance(distribute.make_strategy("auto"), tf.distribute.MirroredStrategy)
  else:
    assert distribute.make_strategy("auto") is tf.distribute.get_strategy()


def test_tpu_without_a_tpu_is_a_clear_error(monkeypatch):
  monkeypatch.delenv("TPU_NAME", raising=False)
  with pytest.raises(KmnistError, match="--strategy=tpu: no TPU is reachable from this machine"):
    distribute.make_strategy("tpu")


def test_cpu_split_after_tensorflow_started_is_refused():
  tf.config.list_logical_devices()  # TensorFlow is running in this process from here on.
  with pytest.raises(
    KmnistError, match="--cpu_replicas=2 must take effect before TensorFlow starts"
  ):
    distribute.split_cpu(2)
  distribute.split_cpu(1)  # one replica: nothing to split, nothing to refuse


def test_global_batch_must_split_evenly_over_replicas():
  three_replicas = types.SimpleNamespace(num_replicas_in_sync=3)
  assert distribute.check_global_batch(99, three_replicas) == 33
  with pytest.raises(KmnistError, match=r"--batch_size=100 .* divisible by the 3 replicas"):
    distribute.check_global_batch(100, three_replicas)


def in_cluster(jobs: dict, task_type: str, task_id: int):
  """A stand-in strategy that has only what chief election looks at: its cluster resolver."""
  resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
    tf.train.ClusterSpec(jobs), task_type=task_type, task_id=task_id
  )
  return types.SimpleNamespace(cluster_resolver=resolver)


def test_only_the_chief_writes():
  workers = {"worker": ["a:1", "b:1", "c:1"]}
  assert distribute.is_chief(in_cluster(workers, "worker", 0))
  assert not distribute.is_chief(in_cluster(workers, "worker", 1))
  assert not distribute.is_chief(in_cluster(workers, "worker", 2))
  with_chief = {"chief": ["z:1"], **workers}
  assert distribute.is_chief(in_cluster(with_chief, "chief", 0))
  assert not distribute.is_chief(in_cluster(with_chief, "worker", 0))
  assert distribute.is_chief(types.SimpleNamespace(cluster_resolver=None))  # one process: it writes


# What TensorFlow 2.21 raised in the surviving worker in test_training_distribute_runs.py's
# dead-worker test.
HEARTBEAT_LOST = (
  "{{function_node "
  "__wrapped__CollectiveReduceV2_Nordering_token_1_device_/job:worker/replica:0/task:0/device:CPU:0}}"
  " Collective ops is aborted by: Error reported from /job:worker/task:1: The following tasks "
  "are unhealthy "
  "(stopped sending heartbeats):\n/job:worker/replica:0/task:1\nThe tasks have crashed."
)
CHIEF_GONE = (
  "Graph execution error:\nrecvmsg:Connection reset by peer\nAdditional GRPC error information "
  "from remote target /job:worker/replica:0/task:0 while calling "
  "/tensorflow.WorkerService/CompleteInstance"
)


def test_lost_peer_is_named_from_tensorflows_message():
  assert distribute.lost_peer(HEARTBEAT_LOST, own_task=("worker", 0)) == "/job:worker/task:1"
  assert distribute.lost_peer(CHIEF_GONE, own_task=("worker", 1)) == "/job:worker/task:0"
  assert distribute.lost_peer("Graph execution error:", own_task=("worker", 1)) is None


def test_a_lost_peer_becomes_one_line_in_a_cluster_only():
  error = tf.errors.UnavailableError(None, None, HEARTBEAT_LOST)
  with (
    pytest.raises(
      KmnistError,
      match=r"lost /job:worker/task:1 of the multi-worker cluster \(UnavailableError\)",
    ),
    distribute.lost_peers_reported(in_cluster({"worker": ["a:1", "b:1"]}, "worker", 0)),
  ):
    raise error
  # Alone, it is not about peers: TensorFlow's error stands.
  alone = types.SimpleNamespace(cluster_resolver=None)
  with pytest.raises(tf.errors.UnavailableError), distribute.lost_peers_reported(alone):
    raise error


class GatheringStrategy:
  """Stands for a cluster's strategy: `gather` returns the rows the other workers would send."""

  def __init__(self, task, others):
    self.cluster_resolver = types.SimpleNamespace(
      cluster_spec=lambda: tf.train.ClusterSpec({"worker": ["a:1", "b:1"]}),
      task_type=task[0],
      task_id=task[1],
    )
    self.others = others

  def experimental_distribute_values_from_function(self, function):
    return function(None)

  def gather(self, mine, axis):
    return tf.concat([mine, *[tf.constant(row) for row in self.others]], axis)

  def experimental_local_results(self, value):
    return (value,)


def row_of(task_index, values) -> np.ndarray:
  data = json.dumps(values, sort_keys=True).encode()
  row = np.zeros((1, distribute.AGREEMENT_BYTES + 2), np.int32)
  row[0, 0] = task_index
  row[0, 2 : 2 + len(data)] = np.frombuffer(data, np.uint8)
  return row


@pytest.mark.parametrize(
  "theirs, difference",
  [
    ({"seed": 1}, "--seed is 0 here, 1 there"),
    ({"kmnist": "0.1.0 (source sha256 bbb)"}, "kmnist is 0.1.0 (source sha256 aaa) here, "),
    ({"data": "feed"}, "the training data (sha256) is beef here, feed there"),
  ],
)
def test_workers_that_disagree_are_stopped_naming_the_difference(theirs, difference):
  mine = {"seed": 0, "kmnist": "0.1.0 (source sha256 aaa)", "data": "beef"}
  agreeing = GatheringStrategy(("worker", 0), [row_of(1, mine)])
  distribute.check_workers_agree(agreeing, mine)
  disagreeing = GatheringStrategy(("worker", 0), [row_of(1, {**mine, **theirs})])
  with pytest.raises(
    KmnistError,
    match="and worker 1 of the TF_CONFIG cluster were started differently: "
    + re.escape(difference),
  ):
    distribute.check_workers_agree(disagreeing, mine)


def test_one_process_has_nobody_to_agree_with():
  distribute.check_workers_agree(tf.distribute.get_strategy(), {"seed": 0})
