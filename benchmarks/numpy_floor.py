"""The arithmetic floor: the tutorial's softmax regression and SGD in plain NumPy, same batches."""

import time

import numpy as np


def train(images: np.ndarray, labels: np.ndarray, batches: np.ndarray, learning_rate: float):
  """images uint8 [N, 28, 28], labels int [N], index batches [steps, batch] -> (W, b, seconds)."""
  x_all = images.reshape(len(images), -1).astype(np.float32) / 255.0
  w = np.zeros((784, 10), np.float32)
  b = np.zeros(10, np.float32)
  eye = np.eye(10, dtype=np.float32)
  start = time.perf_counter()
  for index in batches:
    x, y = x_all[index], eye[labels[index]]
    logits = x @ w + b
    logits -= logits.max(1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(1, keepdims=True)
    grad = (p - y) / len(index)  # d(mean cross-entropy)/d(logits)
    w -= learning_rate * (x.T @ grad)
    b -= learning_rate * grad.sum(0)
  return w, b, time.perf_counter() - start


def accuracy(w, b, images, labels) -> float:
  logits = images.reshape(len(images), -1).astype(np.float32) / 255.0 @ w + b
  return float(np.mean(logits.argmax(1) == labels))
