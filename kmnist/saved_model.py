"""SavedModel export for TensorFlow Serving: `<export_base>/<integer version>/`, written atomically.

The signature contract (README, "Serving"):
  serving_default: image uint8 [None, 28, 28] (raw pixels 0-255, white digit on black)
  serving_float:   x float32 [None, 784] (pixels in [0, 1], flattened: the tutorial's `x`)
  both return      class_id int64 [None], probabilities float32 [None, 10], logits float32 [None, 10]
Scaling happens inside the graph, so clients send pixels as they have them.
"""

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kmnist import files, warmup
from kmnist.layout import next_version
from kmnist.data import IMAGE_SHAPE
from kmnist.errors import KmnistError

SERVING_SIGNATURE = "serving_default"
FLOAT_SIGNATURE = "serving_float"
OUTPUT_NAMES = ("class_id", "probabilities", "logits")


def outputs_from_logits(logits):
  """The named outputs every signature returns."""
  return {
      "class_id": tf.argmax(logits, axis=-1),
      "probabilities": tf.nn.softmax(logits, axis=-1),
      "logits": logits,
  }


def build_archive(model: keras.Model) -> keras.export.ExportArchive:
  archive = keras.export.ExportArchive()
  archive.track(model)

  @tf.function(input_signature=[tf.TensorSpec((None,) + IMAGE_SHAPE, tf.uint8, name="image")])
  def serve_uint8(image):
    return outputs_from_logits(model(tf.cast(image, tf.float32) / 255.0, training=False))

  @tf.function(input_signature=[tf.TensorSpec((None, IMAGE_SHAPE[0] * IMAGE_SHAPE[1]), tf.float32, name="x")])
  def serve_float(x):
    return outputs_from_logits(model(tf.reshape(x, (-1,) + IMAGE_SHAPE), training=False))

  archive.add_endpoint(SERVING_SIGNATURE, serve_uint8)
  archive.add_endpoint(FLOAT_SIGNATURE, serve_float)
  return archive


def export_saved_model(model: keras.Model, export_base, version: int | None = None,
                       warmup_images: np.ndarray | None = None) -> Path:
  """Writes the SavedModel to `<export_base>/<version>/` (next free version by default); never overwrites.

  `warmup_images` (a few uint8 digits) become TF Serving warmup requests in `assets.extra/`.
  """
  export_base = Path(export_base)
  version = next_version(export_base) if version is None else version
  target = export_base / str(version)
  if target.exists():
    raise KmnistError(f"export version {target} already exists; pick another --export_version or leave it unset")
  with files.atomic_directory(target) as tmp:
    build_archive(model).write_out(str(tmp), verbose=False)
    if warmup_images is not None:
      warmup.write_warmup_requests(tmp, warmup_images)
  return target


def load_signature(saved_model_dir, signature: str = SERVING_SIGNATURE):
  return tf.saved_model.load(str(saved_model_dir)).signatures[signature]


def predict_saved_model(saved_model_dir, images_uint8: np.ndarray, batch_size: int = 10_000) -> dict:
  """Runs `serving_default` as a client would (uint8 pixels in), returning numpy outputs."""
  serve = load_signature(saved_model_dir)
  chunks = [serve(image=tf.constant(images_uint8[i:i + batch_size]))
            for i in range(0, len(images_uint8), batch_size)]
  return {k: np.concatenate([c[k].numpy() for c in chunks]) for k in chunks[0]}
