"""The batches `fit` gets: the seeded global batches on one device, each replica's rows of them."""

import numpy as np
import tensorflow as tf

from kmnist.data import input_pipeline
from kmnist.training import batches

from train_helpers import small_config


def test_training_batches_on_one_device_are_the_seeded_batches(tmp_path, synthetic_datasets):
  config = small_config(tmp_path)
  train = synthetic_datasets.train
  got = batches.training_batches(config, train, tf.distribute.get_strategy(), start_step=2)
  expected = input_pipeline.train_dataset(train, config.batch_size, config.seed, start_step=2)
  for (x, y), (ex, ey) in zip(got.take(3), expected.take(3), strict=True):
    np.testing.assert_array_equal(x.numpy(), ex.numpy())
    np.testing.assert_array_equal(y.numpy(), ey.numpy())


def labels_of(dataset):
  return [y.numpy().argmax(-1) for _, y in dataset]


def test_one_replica_trains_on_the_single_device_batches(synthetic_datasets):
  train = synthetic_datasets.train

  def make_indices():
    return input_pipeline.batch_indices(len(train), 50, seed=0)

  def to_batches(indices):
    return input_pipeline.train_dataset(train, 50, seed=0, indices=indices)

  expected = labels_of(
    input_pipeline.train_dataset(train, 50, seed=0).take(45)
  )  # past one epoch's 40: reshuffles match
  for strategy in (
    tf.distribute.get_strategy(),
    tf.distribute.OneDeviceStrategy("/cpu:0"),
    tf.distribute.MirroredStrategy(["/cpu:0"]),
  ):
    got = batches.replica_batches(strategy, make_indices, to_batches, 50)
    for _ in range(2):  # every iterator starts the same order (Keras opens one before training)
      iterator = iter(got)
      np.testing.assert_array_equal(labels_of(next(iterator) for _ in range(45)), expected)


class FakeCluster:
  """Calls the dataset function as worker `worker` of `workers`, each with `local` replicas,
  would."""

  def __init__(self, workers, worker, local):
    self.context = tf.distribute.InputContext(
      num_input_pipelines=workers, input_pipeline_id=worker, num_replicas_in_sync=workers * local
    )
    self.num_replicas_in_sync = workers * local
    self.cluster_resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
      tf.train.ClusterSpec({"worker": [f"localhost:{port}" for port in range(workers)]}),
      task_type="worker",
      task_id=worker,
    )

  def distribute_datasets_from_function(self, dataset_fn):
    return dataset_fn(self.context)


def test_each_replica_gets_its_rows_of_every_global_batch():
  images, row_labels = np.zeros((80, 28, 28), np.uint8), np.arange(80) % 8

  def make_indices():  # global batches of 8 examples, in order
    return tf.data.Dataset.range(80).batch(8)

  def to_batches(indices):  # each example labelled with its row 0..7
    return indices.map(
      lambda i: input_pipeline.preprocess(tf.gather(images, i), tf.gather(row_labels, i))
    )

  # 2 workers x 2 replicas: worker 1 feeds global replicas 2 and 3, rows 4-5 and 6-7, batch after
  # batch.
  worker1 = batches.replica_batches(
    FakeCluster(workers=2, worker=1, local=2), make_indices, to_batches, 8
  )
  assert [list(labels) for labels in labels_of(worker1.take(4))] == [[4, 5], [6, 7], [4, 5], [6, 7]]
  worker0 = batches.replica_batches(
    FakeCluster(workers=2, worker=0, local=2), make_indices, to_batches, 8
  )
  assert [list(labels) for labels in labels_of(worker0.take(2))] == [[0, 1], [2, 3]]
