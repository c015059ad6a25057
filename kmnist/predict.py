"""Classifying users' files with a SavedModel or a .tflite (found by kmnist.model_paths).

Reads the pictures and arrays, runs the model once on all of them, and returns the most probable
digits.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from kmnist import images
from kmnist.data import IMAGE_SHAPE
from kmnist.errors import KmnistError, one_line
from kmnist.export import saved_model, tflite


def load_inputs(paths) -> tuple[list, np.ndarray, list]:
  """Reads every file: (names like 'a.npy[3]', uint8 images [N, 28, 28], one-line errors)."""
  names, digits, errors = [], [], []
  for path in paths:
    try:
      if str(path).endswith(".npy"):
        array = images.load_npy(path)
        names += [f"{path}[{i}]" for i in range(len(array))] if len(array) > 1 else [str(path)]
        digits += list(array)
      else:
        digits.append(images.load_png(path))
        names.append(str(path))
    except KmnistError as e:
      errors.append(str(e))
  return names, np.asarray(digits, np.uint8).reshape((-1,) + IMAGE_SHAPE), errors


def load_predictor(kind: str, model_path: Path) -> Callable[[np.ndarray], dict]:
  """Loads the model once: a function uint8 [N, 28, 28] -> outputs; KmnistError if it won't."""
  try:
    if kind == "tflite":
      tflite.interpreter(model_path)  # fails here, not per file, on a broken model
      return lambda digits: tflite.predict_tflite(model_path, digits)
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
