"""What an export is, written inside it: the model, kmnist's version, the training flags.

A SavedModel carries it in `assets.extra/kmnist.json` (TF Serving's place for files that are not
the model: it loads the version unchanged), a TFLite version directory as `kmnist.json`. The server,
the page, kmnist-predict and kmnist-visualize read the model from here instead of guessing it from
the variables. An export from an older kmnist has none: readers then say so once and guess.
No TensorFlow here.
"""

import json
import os
import uuid
from pathlib import Path

import numpy as np

from kmnist import __version__
from kmnist.data.spec import IMAGE_SHAPE, NUM_CLASSES
from kmnist.export import formats
from kmnist.models import registry
from kmnist.util import files
from kmnist.util.errors import KmnistError, one_line

FILENAME = "kmnist.json"
FORMAT = 1


def make(entry, training_flags: dict) -> dict:
  """The record of a model built from registry `entry` and trained with `training_flags`."""
  return {
    "format": FORMAT,
    "model": entry.name,
    "description": entry.description,
    "picture": entry.picture,  # what weights.png draws (kmnist.models.registry.PICTURE_KINDS)
    "pixel_layer": entry.pixel_layer,  # the layer whose kernel it draws
    "kmnist_version": __version__,
    "training_flags": training_flags,
  }


def path_in(export_dir) -> Path:
  """Where the record of a SavedModel or TFLite version directory is."""
  export_dir = Path(export_dir)
  if (export_dir / "saved_model.pb").is_file():
    return export_dir / "assets.extra" / FILENAME
  return export_dir / FILENAME


def write(export_dir, record: dict, version: int) -> Path:
  """Writes `record` with the export's version into `export_dir` (before it is renamed in place)."""
  return files.write_json_atomic(path_in(export_dir), {**record, "export_version": version})


def pair(about: dict, version: int) -> tuple[dict, dict]:
  """The records of one export's SavedModel and TFLite version directories: both carry one
  `export_id`, and the SavedModel's names its TFLite directory, relative to itself (so a copy of
  the export directory, or a container's mount of it, keeps the two together)."""
  linked = {**about, "export_id": uuid.uuid4().hex}
  return {**linked, "tflite_dir": f"../../tflite/{version}"}, linked


def tflite_dir(saved_model_dir, about: dict) -> Path:
  """Where a SavedModel version's own TFLite files are: where its record says, else (an export of
  an older kmnist, which wrote no such line) beside it, <export_dir>/tflite/<v>."""
  relative = about.get("tflite_dir")
  if not relative:
    return formats.tflite_dir_beside(saved_model_dir)
  return Path(os.path.normpath(Path(saved_model_dir) / relative))


def not_of_export(tflite_about: dict | None, about: dict) -> str | None:
  """Why a TFLite directory (its record) is not the one written with the SavedModel whose record is
  `about`; None when it is (or when neither says: exports of an older kmnist)."""
  if tflite_about is None:
    return "it has no kmnist.json" if about.get("export_id") else None
  for key in ("export_id", "model"):
    if about.get(key) and tflite_about.get(key) != about.get(key):
      return f"its {key} is {tflite_about.get(key)!r}, the SavedModel's {about.get(key)!r}"
  return None


def read(export_dir) -> dict | None:
  """The record of an export, None if it has none (an older kmnist's); KmnistError if it is bad."""
  path = path_in(export_dir)
  if not path.is_file():
    return None
  try:
    record = json.loads(path.read_text())
    if not isinstance(record, dict) or not isinstance(record.get("model"), str):
      raise ValueError("it names no model")
  except (OSError, ValueError) as e:
    raise KmnistError(
      f"{path} does not say what the export is ({one_line(e)}); export the model again with "
      "kmnist-train"
    ) from None
  return record


def describe(export_dir, variables: dict, log=None) -> dict:
  """The record of a SavedModel, given its variables {name: array}; guessed from their shapes
  (and said through `log`) for an export from an older kmnist, which wrote none."""
  record = read(export_dir)
  if record is not None:
    return record
  name = guess_model(list(variables.values()), export_dir)
  if log:
    log(
      f"{export_dir} has no {path_in(export_dir).relative_to(export_dir)} (an export from an older "
      f"kmnist): taken for --model={name} by the shapes of its variables"
    )
  return {**make(registry.get(name), training_flags=None), "guessed": True}


def guess_model(variables: list, export_dir) -> str:
  """Which of kmnist's first three models `variables` (arrays) belong to, told by their shapes."""
  pixels = int(np.prod(IMAGE_SHAPE))
  convolutions = [v for v in variables if v.ndim == 4 and v.shape[2] == 1]
  dense = [v for v in variables if v.ndim == 2 and v.shape[0] == pixels]
  biases = [v for v in variables if v.shape == (NUM_CLASSES,)]
  if len(convolutions) == 1:
    return "cnn"
  if len(dense) == 1 and dense[0].shape[1] != NUM_CLASSES:
    return "mlp"
  if len(dense) == 1 and len(biases) == 1:
    return "softmax"
  raise KmnistError(
    f"{export_dir} is not a kmnist model: it has no {FILENAME}, and none of a softmax regression's "
    "784x10 kernel, an MLP's first 784xN kernel or a CNN's first convolution among its variables "
    f"{[v.shape for v in variables]}; pass a SavedModel written by kmnist-train"
  )


def pixel_weights(record: dict, variables: dict) -> tuple[np.ndarray | None, np.ndarray | None]:
  """(the kernel weights.png draws, the bias of a model linear in the pixels), from the variables
  {name: array} by the record's `pixel_layer`; (None, None) for a model without a picture."""
  layer = record.get("pixel_layer")
  if not layer:
    return None, None
  found = {
    name.split(":")[0].split("/")[-1]: array
    for name, array in variables.items()
    if name.split("/")[-2:-1] == [layer]
  }
  if "kernel" not in found:
    raise KmnistError(
      f"the export has no variable '{layer}/kernel' although it says it is a {record['model']}; "
      "export the model again with kmnist-train"
    )
  return found["kernel"], found.get("bias") if record.get("picture") == "digit_maps" else None
