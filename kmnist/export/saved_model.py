"""SavedModel export for TensorFlow Serving: `<base>/<integer version>/`, atomic, with warmup.

Signatures as in `kmnist.export.signatures`; scaling happens inside the graph, so clients send
pixels as they have them. Each version carries `assets.extra/tf_serving_warmup_requests` (TF
Serving's "SavedModel Warmup"): PredictRequests of a few real digits, which TF Serving replays when
it loads the version so that the first real request does not pay for graph initialisation.
"""

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from kmnist.data.spec import IMAGE_SHAPE
from kmnist.export import record
from kmnist.export.signatures import (
  FLAT_SPEC,
  FLOAT_SIGNATURE,
  IMAGE_SPEC,
  SERVING_SIGNATURE,
  outputs_from_logits,
)
from kmnist.util import files

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MODEL_NAME = "kmnist"  # the name TF Serving serves it under (README's docker command)


def build_archive(model: keras.Model) -> keras.export.ExportArchive:
  archive = keras.export.ExportArchive()
  archive.track(model)

  @tf.function(input_signature=[IMAGE_SPEC], autograph=False)
  def serve_uint8(image):
    return outputs_from_logits(model(tf.cast(image, tf.float32) / 255.0, training=False))

  @tf.function(input_signature=[FLAT_SPEC], autograph=False)
  def serve_float(x):
    return outputs_from_logits(model(tf.reshape(x, (-1,) + IMAGE_SHAPE), training=False))

  archive.add_endpoint(SERVING_SIGNATURE, serve_uint8)
  archive.add_endpoint(FLOAT_SIGNATURE, serve_float)
  return archive


def export_saved_model(
  model: keras.Model,
  export_base,
  version: int | None = None,
  warmup_images: np.ndarray | None = None,
  about: dict | None = None,
) -> Path:
  """Writes the SavedModel to `<export_base>/<version>/` (default: the next free); never overwrites.

  `warmup_images` (a few uint8 digits) become TF Serving warmup requests in `assets.extra/`, and
  `about` (kmnist.export.record.make) says there what the export is.
  """
  target = Path(export_base) / str(files.free_version([export_base], version))
  with files.atomic_directory(target) as tmp:
    write_saved_model(model, tmp, int(target.name), warmup_images, about)
  return target


def write_saved_model(
  model: keras.Model, directory, version: int, warmup_images=None, about: dict | None = None
) -> None:
  """The SavedModel's files, written into `directory` (a hidden one, renamed when complete)."""
  build_archive(model).write_out(str(directory), verbose=False)
  if warmup_images is not None:
    write_warmup_requests(directory, warmup_images)
  if about is not None:
    record.write(directory, about, version)


def load_signature(saved_model_dir, signature: str = SERVING_SIGNATURE):
  return tf.saved_model.load(str(saved_model_dir)).signatures[signature]


def predict_saved_model(
  saved_model_dir, images_uint8: np.ndarray, batch_size: int = 10_000
) -> dict:
  """Runs `serving_default` as a client would (uint8 pixels in), returning numpy outputs."""
  serve = load_signature(saved_model_dir)
  chunks = [
    serve(image=tf.constant(images_uint8[i : i + batch_size]))
    for i in range(0, len(images_uint8), batch_size)
  ]
  return {k: np.concatenate([c[k].numpy() for c in chunks]) for k in chunks[0]}


def warmup_requests(images_uint8: np.ndarray) -> list:
  """One single-digit request per image, then one batch of all of them, on both signatures."""
  images_uint8 = np.asarray(images_uint8, np.uint8)
  batches = [images_uint8[i : i + 1] for i in range(len(images_uint8))] + [images_uint8]
  requests = []
  for batch in batches:
    request = predict_pb2.PredictRequest(
      model_spec=model_pb2.ModelSpec(name=MODEL_NAME, signature_name=SERVING_SIGNATURE)
    )
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(batch))
    requests.append(request)
  float_request = predict_pb2.PredictRequest(
    model_spec=model_pb2.ModelSpec(name=MODEL_NAME, signature_name=FLOAT_SIGNATURE)
  )
  float_request.inputs["x"].CopyFrom(
    tf.make_tensor_proto(images_uint8.reshape(len(images_uint8), -1).astype(np.float32) / 255.0)
  )
  requests.append(float_request)
  return [
    prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=r))
    for r in requests
  ]


def write_warmup_requests(saved_model_dir, images_uint8: np.ndarray) -> Path:
  path = Path(saved_model_dir) / WARMUP_FILE
  path.parent.mkdir(parents=True, exist_ok=True)
  with tf.io.TFRecordWriter(str(path)) as writer:
    for log in warmup_requests(images_uint8):
      writer.write(log.SerializeToString())
  return path


def read_warmup_requests(saved_model_dir) -> list:
  path = Path(saved_model_dir) / WARMUP_FILE
  return [
    prediction_log_pb2.PredictionLog.FromString(record.numpy())
    for record in tf.data.TFRecordDataset(str(path))
  ]
