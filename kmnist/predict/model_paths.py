"""What a --model path names, and the reference export shipped inside the package.

A path names a SavedModel version, a TF Serving base (its newest version), or a .tflite file; the
default is the reference export.

Light on purpose (no TensorFlow), so the commands check a model path before TensorFlow starts.
"""

import importlib.resources
from pathlib import Path

from kmnist.util import files
from kmnist.util.errors import KmnistError


def reference_export() -> Path:
  """The reference export inside the installed package (package data; the default command's)."""
  # pip always unpacks a package onto the file system, where TensorFlow can read it; a zipped
  # install could not be loaded by TensorFlow in any case.
  return Path(str(importlib.resources.files("kmnist").joinpath("reference")))


def resolve_model(model: str | None) -> tuple[str, Path]:
  """("saved_model" | "tflite", path) for --model (None: the reference), or raises naming why."""
  path = reference_export() / "saved_model" if model is None else Path(model)
  if path.is_file() and path.suffix == ".tflite":
    with open(path, "rb") as f:
      header = f.read(8)
    if header[4:8] != b"TFL3":  # the FlatBuffer identifier of every TFLite model
      raise KmnistError(
        f"--model={path} is not a TFLite model (no TFL3 identifier); give a .tflite from "
        "kmnist-train"
      )
    return "tflite", path
  if path.is_dir():
    if files.is_saved_model(path):
      return "saved_model", path
    versions = files.existing_versions(path)
    if versions and files.is_saved_model(path / str(versions[-1])):
      return "saved_model", path / str(versions[-1])
  raise KmnistError(
    f"--model={path} is not a SavedModel directory (no saved_model.pb) nor a .tflite file; "
    f"give e.g. exported/saved_model/1 or exported/tflite/1/kmnist_float.tflite"
  )
