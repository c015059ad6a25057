"""Scores from logits: accuracy and loss as Keras computes them, the confusion matrix, and the
per-digit report."""

import json

import numpy as np
import pytest

from kmnist.models import metrics


def test_scores_match_keras():
  import keras

  rng = np.random.RandomState(0)
  logits = rng.randn(500, 10).astype(np.float32) * 3
  labels = rng.randint(0, 10, 500)
  scores = metrics.scores(logits, labels)
  keras_loss = keras.losses.CategoricalCrossentropy(from_logits=True)(np.eye(10)[labels], logits)
  assert scores["test_loss"] == pytest.approx(float(keras_loss), rel=1e-5)
  assert scores["test_accuracy"] == np.mean(logits.argmax(-1) == labels)
  assert scores["test_examples"] == 500
  assert metrics.accuracy(logits.argmax(-1), labels) == metrics.accuracy(logits, labels)


def test_confusion_matrix_counts_true_down_predicted_across():
  counts = metrics.confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 0, 2, 2]))
  expected = np.zeros((10, 10), np.int64)
  expected[0, 0] = expected[0, 1] = expected[1, 1] = expected[2, 0] = 1
  expected[2, 2] = 2
  np.testing.assert_array_equal(counts, expected)


def test_class_report_precision_recall_and_support():
  labels = np.array([0, 0, 0, 1, 1, 2])
  predictions = np.array([0, 0, 1, 1, 0, 1])  # 2 is never predicted; 3-9 never occur.
  report = metrics.class_report(labels, predictions)
  per_class = report["per_class"]
  assert per_class["0"] == {"precision": 2 / 3, "recall": 2 / 3, "support": 3}
  assert per_class["1"] == {"precision": 1 / 3, "recall": 1 / 2, "support": 2}
  assert per_class["2"] == {"precision": None, "recall": 0.0, "support": 1}
  assert per_class["9"] == {"precision": None, "recall": None, "support": 0}
  assert np.sum(report["confusion_matrix"]) == len(labels)
  json.dumps(report, allow_nan=False)  # Goes into metrics.json as it is.


def test_softmax_and_cross_entropy_are_stable_for_huge_logits():
  logits = np.array([[1000.0, 0.0, -1000.0] + [0.0] * 7])
  np.testing.assert_allclose(metrics.softmax(logits)[0, :3], [1.0, 0.0, 0.0])
  assert metrics.cross_entropy(logits, np.array([0])) == pytest.approx(0.0)
  assert metrics.cross_entropy(logits, np.array([2])) == pytest.approx(2000.0)
