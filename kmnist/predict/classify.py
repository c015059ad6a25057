"""Classifying users' files with a SavedModel or a .tflite (found by kmnist.predict.model_paths):
a raw-tensor file, or an image-classifier bundle (given each digit as an RGB picture).

Files are read one at a time (a big .npy a chunk at a time) and classified in batches of BATCH
digits as they come, so any number and size of files is classified in bounded memory; every file,
and every digit of an array, is either classified or named in one error line.
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf

from kmnist.data.spec import IMAGE_SHAPE
from kmnist.export import bundle, saved_model, tflite
from kmnist.predict import arrays, images
from kmnist.util.errors import KmnistError, one_line

BATCH = 1000  # digits per call of the model


def read_inputs(paths) -> Iterator[tuple[list[str], np.ndarray, list[str]]]:
  """(names like 'a.npy[3]', uint8 digits [n, 28, 28], one-line errors), a file (or a chunk of a
  big array) at a time."""
  for path in paths:
    try:
      if str(path).lower().endswith(".npy"):
        yield from arrays.read_digits(path)
      else:
        yield [str(path)], images.load_png(path)[None], []
    except KmnistError as e:
      yield [], np.zeros((0,) + IMAGE_SHAPE, np.uint8), [str(e)]


def load_inputs(paths) -> tuple[list, np.ndarray, list]:
  """Every digit of `paths` at once: (names, uint8 images [N, 28, 28], one-line errors)."""
  names, digits, errors = [], [], []
  for more_names, more_digits, more_errors in read_inputs(paths):
    names += more_names
    digits.append(more_digits)
    errors += more_errors
  return names, np.concatenate(digits or [np.zeros((0,) + IMAGE_SHAPE, np.uint8)]), errors


def classify(paths, predictor, top_k: int) -> Iterator[tuple[str, object]]:
  """("result", one format_results dict) per digit and ("error", line) per bad file or digit, in
  the order of `paths`, the model called on BATCH digits at a time."""
  names, digits = [], []

  def flush():
    pending = np.concatenate(digits)
    for start in range(0, len(pending), BATCH):
      outputs = predictor(pending[start : start + BATCH])
      yield from (
        ("result", r) for r in format_results(names[start : start + BATCH], outputs, top_k)
      )
    names.clear()
    digits.clear()

  for more_names, more_digits, errors in read_inputs(paths):
    names += more_names
    digits.append(more_digits)
    if len(names) >= BATCH or errors:  # results before the next error: the order of the files
      yield from flush() if names else ()
      digits.clear()
    yield from (("error", error) for error in errors)
  if names:
    yield from flush()


def load_predictor(kind: str, model_path: Path) -> Callable[[np.ndarray], dict]:
  """Loads the model once: a function uint8 [N, 28, 28] -> outputs; KmnistError if it won't."""
  try:
    if kind == "tflite":
      tflite.interpreter(model_path)  # fails here, not per file, on a broken model
      predict = bundle.predict_bundle if bundle.is_bundle(model_path) else tflite.predict_tflite
      return lambda digits: predict(model_path, digits)
    serve = saved_model.load_signature(model_path)
  except (
    Exception
  ) as e:  # Whatever TF or LiteRT raise on a broken file, the user needs the file named.
    raise KmnistError(
      f"--model={model_path} could not be loaded as a {kind} ({one_line(e)}); "
      f"give an export written by kmnist-train"
    ) from None
  return lambda digits: {k: v.numpy() for k, v in serve(image=tf.constant(digits)).items()}


def format_results(names, outputs, top_k: int) -> list[dict]:
  """One JSON-ready result per digit: name, predicted class, the `top_k` most probable."""
  results = []
  for name, probabilities in zip(names, outputs["probabilities"], strict=True):
    top = np.argsort(-probabilities)[:top_k]
    results.append(
      {
        "file": name,
        "class_id": int(top[0]),
        "top": [
          {"class_id": int(c), "probability": round(float(probabilities[c]), 4)} for c in top
        ],
      }
    )
  return results
