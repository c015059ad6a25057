"""What the export stage writes, by name: the TFLite files, the labels file, where they lie.

No TensorFlow here: the training configuration checks --tflite against these names before
TensorFlow starts, and readers of an export (kmnist-predict, kmnist-serve) find its files by them.
"""

import importlib.util
from pathlib import Path

from kmnist.util.errors import KmnistError

# Raw-tensor files: the SavedModel's signature (uint8 [N, 28, 28] in; class_id, probabilities,
# logits out), what LiteRT's Interpreter and CompiledModel APIs run.
RAW_VARIANTS = ("float", "dynamic", "int8")
# Image-classifier bundles: an RGB picture [1, 28, 28, 3] in, probabilities out, with TFLite
# metadata and the labels inside: what MediaPipe Tasks' ImageClassifier runs (kmnist.export.bundle).
CLASSIFIER_VARIANTS = ("float_classifier", "int8_classifier")
TFLITE_VARIANTS = RAW_VARIANTS + CLASSIFIER_VARIANTS
INT8_VARIANTS = ("int8", "int8_classifier")  # calibrated on training images
LABELS_FILENAME = "labels.txt"  # line i names class i: the digits 0-9
# The bundle the drawing page runs on the device: the smallest, integer-only one.
DEVICE_CLASSIFIER = "int8_classifier"


def tflite_filename(variant: str) -> str:
  """kmnist_float.tflite, ..., kmnist_int8_classifier.tflite."""
  return f"kmnist_{variant}.tflite"


def tflite_dir_beside(saved_model_version_dir) -> Path:
  """The TFLite version directory an export wrote with a SavedModel version:
  <export_dir>/tflite/<v> beside <export_dir>/saved_model/<v>."""
  version_dir = Path(saved_model_version_dir)
  return version_dir.parent.parent / "tflite" / version_dir.name


def check_tflite_variants(variants: tuple[str, ...]) -> None:
  """--tflite names each variant at most once, and at least one."""
  flag = f"--tflite={','.join(variants)}"
  choices = f"use a comma-separated list of {', '.join(TFLITE_VARIANTS)}"
  unknown = [v for v in variants if v not in TFLITE_VARIANTS]
  if unknown:
    raise KmnistError(f"{flag}: {unknown[0]!r} is not a TFLite variant; {choices}")
  if not variants:
    raise KmnistError(f"{flag} names no TFLite variant; {choices} (default: all of them)")
  if len(set(variants)) != len(variants):
    raise KmnistError(f"{flag} names a variant twice; {choices}, each once")


def check_mediapipe_check(variants: tuple[str, ...]) -> None:
  """--mediapipe_check has a bundle to check and MediaPipe to check it with."""
  if not set(variants) & set(CLASSIFIER_VARIANTS):
    raise KmnistError(
      f"--mediapipe_check runs the image-classifier bundles through MediaPipe, and "
      f"--tflite={','.join(variants)} names none; add {' or '.join(CLASSIFIER_VARIANTS)}, or "
      "drop --mediapipe_check"
    )
  if importlib.util.find_spec("mediapipe") is None:
    raise KmnistError(
      "--mediapipe_check needs MediaPipe, which is not installed: pip install 'kmnist[mobile]' "
      "(on Debian it also needs apt-get install libgl1 libglib2.0-0), or drop --mediapipe_check"
    )
