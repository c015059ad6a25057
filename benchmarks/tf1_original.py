"""The tutorial's original TF1 program (mnist_softmax.py), through tf.compat.v1.

Placeholders, feed_dict, GradientDescentOptimizer(0.5). Run in its own process: disabling eager
execution is global.

    python -m benchmarks.tf1_original DATA.npz OUT.json [REPEATS]
"""

import json
import sys
import time

import numpy as np

from benchmarks import tf1_program


def main(data_path, out_path, repeats="3"):
  repeats = int(repeats)
  import tensorflow as tf

  tf.compat.v1.disable_eager_execution()
  data = np.load(data_path)
  x_all = data["train_images"].reshape(-1, 784).astype(np.float32) / 255.0
  y_all = np.eye(10, dtype=np.float32)[data["train_labels"]]
  batches = data["batches"]

  x, y_, train_step, accuracy = tf1_program.tutorial_graph(tf)

  with tf.compat.v1.Session() as sess:
    timings = []
    for _ in range(
      repeats
    ):  # the same 1000 steps from zero weights each time; the median is reported
      sess.run(tf.compat.v1.global_variables_initializer())
      sess.run(
        train_step, feed_dict={x: x_all[batches[0]], y_: y_all[batches[0]]}
      )  # first run: graph set-up
      start = time.perf_counter()
      for index in batches[1:]:
        sess.run(train_step, feed_dict={x: x_all[index], y_: y_all[index]})
      timings.append(time.perf_counter() - start)
    seconds = float(np.median(timings))
    test_x = data["test_images"].reshape(-1, 784).astype(np.float32) / 255.0
    test_y = np.eye(10, dtype=np.float32)[data["test_labels"]]
    acc = float(sess.run(accuracy, feed_dict={x: test_x, y_: test_y}))
  steady_steps = len(batches) - 1
  with open(out_path, "w") as f:
    json.dump({"test_accuracy": acc, "seconds_steady": seconds, "steady_steps": steady_steps}, f)


if __name__ == "__main__":
  main(*sys.argv[1:4])
