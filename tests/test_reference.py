"""The reference export shipped in the package (kmnist/reference/): intact, and as accurate as
its manifest says."""

import json

import numpy as np
import pytest

from kmnist.export import saved_model, tflite
from kmnist.predict import model_paths
from kmnist.training.config import TrainConfig
from kmnist.util import manifest

REFERENCE = model_paths.reference_export()


def read_manifest() -> dict:
  return json.loads((REFERENCE / manifest.MANIFEST).read_text())


def test_every_file_matches_its_manifest_hash():
  listed = read_manifest()["files"]
  assert "saved_model/1/saved_model.pb" in listed and "tflite/1/kmnist_float.tflite" in listed
  assert manifest.changed_files(REFERENCE) == []


def test_manifest_records_the_default_command():
  m = read_manifest()
  defaults = TrainConfig()
  for name in ("steps", "batch_size", "learning_rate", "seed", "strategy"):
    assert m["config"][name] == getattr(defaults, name)
  assert m["versions"]["tensorflow"] and m["versions"]["keras"] and m["versions"]["kmnist"]


@pytest.mark.slow
def test_reference_scores_what_its_manifest_says(real_datasets):
  test = real_datasets.test
  expected = read_manifest()["test_accuracy"]
  served = saved_model.predict_saved_model(REFERENCE / "saved_model" / "1", test.images)
  assert np.mean(served["class_id"] == test.labels) == pytest.approx(expected, abs=1e-4)
  on_phone = tflite.predict_tflite(REFERENCE / "tflite" / "1" / "kmnist_float.tflite", test.images)
  assert np.mean(on_phone["class_id"] == test.labels) == pytest.approx(expected, abs=2e-4)
  assert expected >= 0.905
