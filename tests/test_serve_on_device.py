"""kmnist.serve.web.on_device: each served version's own TFLite files, found from its export's
record (the browser's side of the mode is test_serve_device.py)."""

import types
from pathlib import Path

import pytest
from starlette.exceptions import HTTPException

from kmnist.export import record
from kmnist.serve.web import on_device


def test_a_version_exported_without_the_bundle_is_named(tmp_path):
  version_dir = tmp_path / "saved_model" / "3"
  version_dir.mkdir(parents=True)
  servable = types.SimpleNamespace(
    path=version_dir, version=3, about={}, tflite_dir=tmp_path / "tflite" / "3"
  )
  with pytest.raises(HTTPException) as missing:
    on_device.served_file(servable, "kmnist", "kmnist_int8_classifier.tflite")
  assert missing.value.status_code == 404
  assert missing.value.detail.startswith(
    f"version 3 of kmnist has no kmnist_int8_classifier.tflite ({tmp_path}/tflite/3/"
  )


def sibling_export(root, model: str, bundle: bytes):
  """An export as kmnist-train writes one (the two records, a bundle), as a server loads it."""
  sm_about, tfl_about = record.pair({"model": model}, 1)
  (root / "saved_model" / "1").mkdir(parents=True)
  (root / "saved_model" / "1" / "saved_model.pb").write_bytes(b"")
  record.write(root / "saved_model" / "1", sm_about, 1)
  record.write(root / "tflite" / "1", tfl_about, 1)
  (root / "tflite" / "1" / "kmnist_int8_classifier.tflite").write_bytes(bundle)
  path = root / "saved_model" / "1"
  about = record.read(path)
  return types.SimpleNamespace(
    path=path, version=1, about=about, tflite_dir=record.tflite_dir(path, about)
  )


def test_each_model_gets_its_own_bundle_found_from_its_record(tmp_path):
  # deploy/models.config's family: sibling export directories, each model's phone files its own.
  cnn = sibling_export(tmp_path / "models" / "cnn", "cnn", b"the cnn's bundle")
  mlp = sibling_export(tmp_path / "models" / "mlp", "mlp", b"the mlp's bundle")
  bundle = "kmnist_int8_classifier.tflite"
  for servable, expected in ((cnn, b"the cnn's bundle"), (mlp, b"the mlp's bundle")):
    response = on_device.served_file(servable, servable.about["model"], bundle)
    assert Path(response.path).read_bytes() == expected
  # A SavedModel pointed at another export's files (a wrong mount) is refused, not served.
  cnn.tflite_dir = mlp.tflite_dir
  with pytest.raises(HTTPException) as foreign:
    on_device.served_file(cnn, "cnn", bundle)
  assert foreign.value.status_code == 404 and "is not its export's TFLite directory" in (
    foreign.value.detail
  )
