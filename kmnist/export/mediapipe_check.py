"""The bundles run where phones run them: MediaPipe Tasks' metadata reader and ImageClassifier.

Needs the `mobile` extra (mediapipe, which imports TensorFlow and OpenCV when imported): the
exporter imports this module only when mediapipe is installed (`installed()` lives there), and no
command imports it before checking its flags. MediaPipe's Python ImageClassifier is the same C++
graph its Android, iOS and web tasks run.

mediapipe 1.x's metadata module imports, at its top, the C++ helper its metadata *writer* calls
(`_pywrap_metadata_version`), which the wheel lacks; the reader (MetadataDisplayer, whose JSON comes
from libmediapipe's own flatbuffers parser) needs none of it. A stand-in module that refuses to be
called is registered under that name, so the reader can be imported.
"""

import importlib
import json
import sys
import time
import types

import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import vision
from mediapipe.tasks.python.core.base_options import BaseOptions

from kmnist.data.spec import NUM_CLASSES
from kmnist.export.bundle import rgb
from kmnist.export.formats import LABELS_FILENAME

MISSING_HELPER = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"


def _refuse(*_):
  raise RuntimeError(f"{MISSING_HELPER} is not in this mediapipe wheel; kmnist only reads metadata")


def metadata_reader():
  """mediapipe's metadata module (MetadataDisplayer), importable without the writer's helper."""
  parts = MISSING_HELPER.split(".")
  for depth in range(3, len(parts)):  # the helper's packages, if the wheel lacks them too
    sys.modules.setdefault(".".join(parts[:depth]), types.ModuleType(".".join(parts[:depth])))
  stand_in = types.ModuleType(MISSING_HELPER)
  stand_in.GetMinimumMetadataParserVersion = _refuse
  sys.modules.setdefault(MISSING_HELPER, stand_in)
  return importlib.import_module("mediapipe.tasks.python.metadata.metadata")


def read_metadata(model_bytes: bytes) -> dict:
  """What MediaPipe reads from a bundle: the metadata as JSON, the packed files, the labels."""
  displayer = metadata_reader().MetadataDisplayer.with_model_buffer(model_bytes)
  labels = displayer.get_associated_file_buffer(LABELS_FILENAME).decode().split("\n")
  return {
    "metadata": json.loads(displayer.get_metadata_json()),
    "packed_files": displayer.get_packed_associated_file_list(),
    "labels": [label for label in labels if label],
  }


def classify(model_bytes: bytes, images_uint8: np.ndarray) -> dict:
  """ImageClassifier on each gray digit [N, 28, 28], fed as an app feeds a picture (an mp.Image in
  SRGB): the scores in label order [N, 10], the category and head names it gave, and its time."""
  options = vision.ImageClassifierOptions(
    base_options=BaseOptions(model_asset_buffer=model_bytes), max_results=NUM_CLASSES
  )
  scores = np.zeros((len(images_uint8), NUM_CLASSES), np.float32)
  names, heads = set(), set()
  pictures = np.ascontiguousarray(rgb(images_uint8))
  with vision.ImageClassifier.create_from_options(options) as classifier:
    start = time.perf_counter()
    for i, picture in enumerate(pictures):
      result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=picture))
      for head in result.classifications:
        heads.add(head.head_name)
        for category in head.categories:
          scores[i, category.index] = category.score
          names.add((category.index, category.category_name))
    seconds = time.perf_counter() - start
  return {
    "scores": scores,
    "category_names": [name for _, name in sorted(names)],
    "head_names": sorted(heads),
    "classify_us": seconds / max(1, len(pictures)) * 1e6,
  }


def score(model_bytes: bytes, images_uint8: np.ndarray, labels: np.ndarray) -> dict:
  """A bundle through MediaPipe: its metadata read back, its accuracy on `images_uint8`."""
  read = read_metadata(model_bytes)
  classified = classify(model_bytes, images_uint8)
  return {
    "mediapipe_version": mp.__version__,
    "test_accuracy": float(np.mean(classified["scores"].argmax(-1) == labels)),
    "category_names": classified["category_names"],
    "head_names": classified["head_names"],
    "labels": read["labels"],
    "packed_files": read["packed_files"],
    "classify_us": round(classified["classify_us"], 1),
  }
