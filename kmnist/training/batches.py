"""What `fit` trains on: each replica's rows of the seeded global batches, from a given step."""

import tensorflow as tf

from kmnist.data import input_pipeline
from kmnist.data.splits import Split
from kmnist.training import distribute
from kmnist.training.config import TrainConfig


def replica_batches(strategy: tf.distribute.Strategy, make_indices, to_batches, global_batch: int):
  """Each replica's share of every global batch, ready for `fit` under `strategy`.

  `make_indices()` builds the (small) dataset of index batches, `to_batches(indices)` turns it into
  batches of (image, label); they are kept apart so that only the index pipeline is rebuilt per
  iterator (below), while the pixels are captured once: rebuilding a pipeline that holds them costs
  ~1.6 s per iterator.

  Replica r of R gets rows [r*B/R, (r+1)*B/R) of every global batch B, so together the replicas
  train on exactly the batches one device would, and the summed gradients are the one-device
  gradients up to float rounding. Every worker builds the whole seeded pipeline and keeps its
  replicas' rows (`distribute_datasets_from_function`).
  """
  if strategy.num_replicas_in_sync == 1 and distribute.cluster_task(strategy) is None:
    # One replica gets whole batches: no splitting, no distributed iterator in front of `fit`.
    fresh_indices = tf.data.Dataset.from_tensors(0).flat_map(lambda _: make_indices())
    return to_batches(fresh_indices)

  def dataset_for_worker(context: tf.distribute.InputContext):
    replicas = context.num_replicas_in_sync
    per_replica = context.get_per_replica_batch_size(global_batch)
    local = replicas // context.num_input_pipelines
    first = context.input_pipeline_id * local

    def split(images, labels):
      def rows(t):
        return tf.reshape(t, [replicas, per_replica, *t.shape[1:]])[first : first + local]

      return tf.data.Dataset.from_tensor_slices((rows(images), rows(labels)))

    # Built inside flat_map, so each iterator gets a fresh pipeline that starts the same seeded
    # order. Keras opens an extra iterator before training under a strategy; on one dataset object
    # that would advance the reshuffle seed, and the replicas would train on another order than the
    # single-device run.
    fresh_indices = tf.data.Dataset.from_tensors(0).flat_map(lambda _: make_indices())
    return to_batches(fresh_indices).flat_map(split).prefetch(tf.data.AUTOTUNE)

  return strategy.distribute_datasets_from_function(dataset_for_worker)


def training_batches(config: TrainConfig, train: Split, strategy, start_step: int = 0):
  """What `fit` trains on: each replica's rows of the seeded global batches, from `start_step`."""
  return replica_batches(
    strategy,
    lambda: input_pipeline.batch_indices(len(train), config.batch_size, config.seed, start_step),
    lambda indices: input_pipeline.train_dataset(
      train, config.batch_size, config.seed, start_step, indices, augment=config.augment
    ),
    config.batch_size,
  )
