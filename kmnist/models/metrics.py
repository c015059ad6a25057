"""Scores from logits and labels, in one place: accuracy, loss, confusion matrix, per-digit report.

Plain NumPy on arrays, so the same numbers come out for a model just trained, an export read back,
or a TFLite file; float64 where 10,000 terms are summed.
"""

import numpy as np

from kmnist.data.spec import NUM_CLASSES


def softmax(logits: np.ndarray) -> np.ndarray:
  shifted = np.exp(
    logits - logits.max(axis=-1, keepdims=True)
  )  # Shifted so large logits cannot overflow.
  return shifted / shifted.sum(axis=-1, keepdims=True)


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
  """Share of `predictions` (class ids, or logits [N, 10]) that equal `labels`."""
  predictions = np.asarray(predictions)
  if predictions.ndim == 2:
    predictions = predictions.argmax(-1)
  return float(np.mean(predictions == labels))


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
  """Mean cross-entropy of the labels under softmax(logits): log-sum-exp minus the logit."""
  logits = np.asarray(logits, np.float64)
  peak = logits.max(-1)
  log_sum_exp = peak + np.log(np.exp(logits - peak[:, None]).sum(-1))
  return float(np.mean(log_sum_exp - logits[np.arange(len(labels)), labels]))


def scores(logits: np.ndarray, labels: np.ndarray) -> dict:
  """metrics.json's scores of the test set."""
  return {
    "test_accuracy": accuracy(logits, labels),
    "test_loss": cross_entropy(logits, labels),
    "test_examples": len(labels),
  }


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
  """counts[true digit, predicted digit], int64 [10, 10]."""
  pairs = np.asarray(labels, np.int64) * NUM_CLASSES + np.asarray(predictions, np.int64)
  return np.bincount(pairs, minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)


def class_report(labels: np.ndarray, predictions: np.ndarray) -> dict:
  """The confusion matrix and per-digit precision, recall and support, for metrics.json.

  precision = of the images predicted as the digit, the share that are it (null if none was
  predicted as it); recall = of the images of the digit, the share predicted as it (null if the test
  set has none).
  """
  counts = confusion_matrix(labels, predictions)
  correct, predicted, actual = np.diag(counts), counts.sum(axis=0), counts.sum(axis=1)
  per_class = {
    str(digit): {
      "precision": float(correct[digit] / predicted[digit]) if predicted[digit] else None,
      "recall": float(correct[digit] / actual[digit]) if actual[digit] else None,
      "support": int(actual[digit]),
    }
    for digit in range(NUM_CLASSES)
  }
  return {"confusion_matrix": counts.tolist(), "per_class": per_class}
