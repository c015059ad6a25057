"""Checks of the image-classifier bundles shared by the tests that need MediaPipe: whether it is
installed (the `mobile` extra), and a bundle run through its ImageClassifier against LiteRT."""

import importlib.util
import os

import numpy as np
import pytest

from kmnist.export import bundle

DIGITS = [str(digit) for digit in range(10)]


def require_mediapipe() -> None:
  """Skips the calling test where mediapipe is not installed, saying how to get it; under CI (CI
  set), where the test extra installs it, fails instead."""
  if importlib.util.find_spec("mediapipe") is not None:
    return
  reason = "mediapipe is not installed (pip install -e '.[mobile]'; the test extra includes it)"
  if os.environ.get("CI"):
    pytest.fail(f"the MediaPipe tests must run in CI: {reason}", pytrace=False)
  pytest.skip(reason)


def assert_runs_in_mediapipe_as_in_litert(model_bytes: bytes, images, labels) -> dict:
  """The bundle through MediaPipe's ImageClassifier (pictures fed as mp.Image in SRGB) on every
  image: the digits as category names, from its metadata, and the accuracy of LiteRT within 0.1
  point. Returns both scores."""
  from kmnist.export import mediapipe_check

  through = mediapipe_check.score(model_bytes, images, labels)
  litert = bundle.predict_bundle(model_bytes, images)
  litert_accuracy = float(np.mean(litert["class_id"] == labels))
  assert through["category_names"] == DIGITS and through["labels"] == DIGITS
  assert through["head_names"] == ["probabilities"]
  assert abs(through["test_accuracy"] - litert_accuracy) <= 0.001
  return {"mediapipe": through["test_accuracy"], "litert": litert_accuracy, **through}
