"""The export checks: an export must compute the Keras model's function up to rounding or
quantization; garbage (NaN, 1e30, classes swapped) fails every bar, and the bars are those
documented."""

import re

import numpy as np
import pytest

from kmnist.export import checks
from kmnist.util.errors import KmnistError

VARIANTS = ("float", "dynamic", "int8")


@pytest.mark.parametrize(
  "garbage",
  [
    lambda logits: np.full_like(logits, np.nan),
    lambda logits: logits * 1e30,
    lambda logits: logits[::-1],
  ],
)
@pytest.mark.parametrize("variant", ("saved_model",) + VARIANTS)
def test_check_outputs_rejects_garbage(garbage, variant):
  logits = np.random.RandomState(0).randn(100, 10).astype(np.float32)
  labels = logits.argmax(-1)
  bad = garbage(logits)
  with pytest.raises(KmnistError, match=f"the {variant} export does not reproduce the Keras model"):
    checks.check_outputs(variant, {"class_id": bad.argmax(-1), "logits": bad}, logits, labels)
  assert checks.check_outputs(
    variant, {"class_id": labels, "logits": logits + 1e-6}, logits, labels
  )


def flip_predictions(class_id: np.ndarray, count: int) -> np.ndarray:
  flipped = class_id.copy()
  flipped[:count] = (flipped[:count] + 1) % 10
  return flipped


def test_int8_may_lose_at_most_0_3_points_of_accuracy():
  logits = np.random.RandomState(0).randn(1000, 10).astype(np.float32)
  labels = logits.argmax(-1)  # the Keras model scores 100 %
  ok = {"class_id": flip_predictions(labels, 3), "logits": logits}  # 99.7 %
  assert checks.check_outputs("int8", ok, logits, labels)["test_accuracy"] == 0.997
  with pytest.raises(KmnistError, match=r"test accuracy 0\.9960, needs 0\.9970"):
    checks.check_outputs(
      "int8", {"class_id": flip_predictions(labels, 4), "logits": logits}, logits, labels
    )
  with pytest.raises(KmnistError, match=r"argmax agreement 99\.70%, needs 99\.80%"):
    checks.check_outputs("dynamic", ok, logits, labels)  # stricter for the dynamic-range model


def test_logit_tolerance_scales_with_the_logits():
  logits = np.random.RandomState(0).randn(100, 10).astype(np.float32)
  labels = logits.argmax(-1)
  off_by_one = {"class_id": labels, "logits": logits + 1.0}  # the range is 5.8: int8 allows 0.58
  with pytest.raises(KmnistError, match=re.escape("max |logit difference| 1, allows 0.581")):
    checks.check_outputs("int8", off_by_one, logits, labels)
  assert checks.check_outputs(
    "int8", {"class_id": labels, "logits": 10 * logits + 1.0}, 10 * logits, labels
  )


@pytest.mark.parametrize("variant", ("float_classifier", "int8_classifier"))
def test_bundles_are_held_to_the_keras_softmax(variant):
  logits = 3 * np.random.RandomState(0).randn(100, 10).astype(np.float32)
  labels = logits.argmax(-1)
  probabilities = checks.metrics.softmax(logits)
  good = {"class_id": labels, "probabilities": probabilities + 1e-6}
  assert checks.check_outputs(variant, good, logits, labels)["max_abs_probability_diff"] < 1e-5
  for bad in (probabilities[::-1], np.full_like(probabilities, np.nan), probabilities * 0.5):
    with pytest.raises(
      KmnistError, match=f"the {variant} export does not reproduce .* max \\|probability"
    ):
      checks.check_outputs(
        variant, {"class_id": bad.argmax(-1), "probabilities": bad}, logits, labels
      )


def test_mediapipe_must_name_the_digits_and_score_as_litert():
  digits = [str(d) for d in range(10)]
  through = {"category_names": digits, "labels": digits, "test_accuracy": 0.9170}
  checks.check_mediapipe("int8_classifier", through, {"test_accuracy": 0.9175})
  with pytest.raises(
    KmnistError, match="scores 0.9160 through MediaPipe but 0.9175 through LiteRT"
  ):
    checks.check_mediapipe(
      "int8_classifier", {**through, "test_accuracy": 0.9160}, {"test_accuracy": 0.9175}
    )
  with pytest.raises(KmnistError, match="categories as \\['', '1'"):
    unnamed = {**through, "category_names": ["", *digits[1:]]}
    checks.check_mediapipe("float_classifier", unnamed, {"test_accuracy": 0.9170})
