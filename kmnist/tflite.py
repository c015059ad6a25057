"""TFLite models for phones, converted from the Keras-exported SavedModel and checked with the LiteRT interpreter.

Only Keras-exported SavedModels are converted: `from_concrete_functions` on a Keras 3 model (or a hand-made
tf.Module around it) converts "successfully" into garbage, so every model is scored before it is kept.
"""

from pathlib import Path

import numpy as np

from kmnist.saved_model import SERVING_SIGNATURE

VARIANTS = ("float",)


def convert(saved_model_dir, variant: str = "float") -> bytes:
  """Converts the `serving_default` signature of a kmnist SavedModel to a `.tflite` flatbuffer."""
  import tensorflow as tf

  if variant not in VARIANTS:
    raise ValueError(f"unknown TFLite variant {variant!r}; expected one of {VARIANTS}")
  converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=[SERVING_SIGNATURE])
  return converter.convert()


def model_filename(variant: str) -> str:
  return f"kmnist_{variant}.tflite"


def predict_tflite(model, images_uint8: np.ndarray) -> dict:
  """Runs the `.tflite` (a path or bytes) through its `serving_default` signature runner on uint8 pixels."""
  from ai_edge_litert.interpreter import Interpreter

  if isinstance(model, (str, Path)):
    interpreter = Interpreter(model_path=str(model))
  else:
    interpreter = Interpreter(model_content=model)
  runner = interpreter.get_signature_runner(SERVING_SIGNATURE)
  return {k: np.asarray(v) for k, v in runner(image=np.asarray(images_uint8, np.uint8)).items()}
