"""The tutorial's whole program, as a user runs it: `mnist_softmax.py` through `tf.compat.v1`.

    python -m benchmarks.tf1_program [MNIST_DIR]

What the seed's program does, line for line, so its wall time is the yardstick of `kmnist-train`'s:
import TensorFlow, read the four MNIST files as `input_data.read_data_sets(..., one_hot=True)` did
(gzip, the IDX headers, pixels / 255 as float32, the last 5,000 training images held out for
validation), build the graph, run 1000 steps of `mnist.train.next_batch(100)` (an epoch-wise
shuffle) through `feed_dict`, and print the test accuracy. `tensorflow.examples.tutorials` left
TensorFlow with 2.0, so its reader is written out here (from TF 1.15's `mnist.py`, abridged).
MNIST_DIR defaults to the files shipped inside kmnist.
"""

import gzip
import sys
from pathlib import Path

import numpy as np

VALIDATION_SIZE = 5000


def read_idx(path: Path) -> np.ndarray:
  """An IDX file (MNIST's format): a magic number ending in the rank, the sizes, the data."""
  with gzip.open(path, "rb") as f:
    data = f.read()
  rank = data[3]
  shape = np.frombuffer(data, ">u4", count=rank, offset=4)
  return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(shape)


class DataSet:
  """`input_data`'s DataSet: images [N, 784] in [0, 1], one-hot labels, next_batch by epochs."""

  def __init__(self, images, labels):
    self.images = images.reshape(len(images), 784).astype(np.float32) / 255.0
    self.labels = np.eye(10, dtype=np.float32)[labels]
    self._index, self._order = len(images), None

  def next_batch(self, size):
    if self._index + size > len(self.images):  # a new epoch: reshuffle (the tail is dropped)
      self._order, self._index = np.random.permutation(len(self.images)), 0
    chosen = self._order[self._index : self._index + size]
    self._index += size
    return self.images[chosen], self.labels[chosen]


def read_data_sets(directory: Path):
  images = read_idx(directory / "train-images-idx3-ubyte.gz")
  labels = read_idx(directory / "train-labels-idx1-ubyte.gz")
  train = DataSet(images[VALIDATION_SIZE:], labels[VALIDATION_SIZE:])
  validation = DataSet(images[:VALIDATION_SIZE], labels[:VALIDATION_SIZE])
  test = DataSet(
    read_idx(directory / "t10k-images-idx3-ubyte.gz"),
    read_idx(directory / "t10k-labels-idx1-ubyte.gz"),
  )
  return train, validation, test


def tutorial_graph(tf):
  """The tutorial's lines, with the numerically stable loss it recommends: (x, y_, train_step,
  accuracy)."""
  x = tf.compat.v1.placeholder(tf.float32, [None, 784])
  W = tf.Variable(tf.zeros([784, 10]))  # noqa: N806  (the tutorial's name)
  b = tf.Variable(tf.zeros([10]))
  y = tf.matmul(x, W) + b
  y_ = tf.compat.v1.placeholder(tf.float32, [None, 10])
  cross_entropy = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y_, logits=y))
  train_step = tf.compat.v1.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)
  correct_prediction = tf.equal(tf.argmax(y, 1), tf.argmax(y_, 1))
  accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))
  return x, y_, train_step, accuracy


def main(directory: Path) -> None:
  import tensorflow as tf

  tf.compat.v1.disable_eager_execution()
  train, _, test = read_data_sets(directory)
  x, y_, train_step, accuracy = tutorial_graph(tf)
  sess = tf.compat.v1.InteractiveSession()
  tf.compat.v1.global_variables_initializer().run()
  for _ in range(1000):
    batch_xs, batch_ys = train.next_batch(100)
    sess.run(train_step, feed_dict={x: batch_xs, y_: batch_ys})
  print(sess.run(accuracy, feed_dict={x: test.images, y_: test.labels}))


if __name__ == "__main__":
  from kmnist.data import mnist_files

  main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(mnist_files.VENDORED_DIR))
