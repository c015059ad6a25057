"""TF Serving warmup requests (`assets.extra/tf_serving_warmup_requests`), per TF Serving's "SavedModel Warmup".

TF Serving replays these records when it loads a version, so the first real request does not pay for graph
initialisation. Each record is a `PredictionLog` holding a `PredictRequest`, exactly what a client would send.
"""

from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MODEL_NAME = "kmnist"


def warmup_requests(images_uint8: np.ndarray) -> list:
  """One single-digit request per image, then one batch of all of them, on both signatures."""
  from kmnist.saved_model import FLOAT_SIGNATURE, SERVING_SIGNATURE

  images_uint8 = np.asarray(images_uint8, np.uint8)
  batches = [images_uint8[i:i + 1] for i in range(len(images_uint8))] + [images_uint8]
  requests = []
  for batch in batches:
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=MODEL_NAME, signature_name=SERVING_SIGNATURE))
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(batch))
    requests.append(request)
  float_request = predict_pb2.PredictRequest(
      model_spec=model_pb2.ModelSpec(name=MODEL_NAME, signature_name=FLOAT_SIGNATURE))
  float_request.inputs["x"].CopyFrom(tf.make_tensor_proto(
      images_uint8.reshape(len(images_uint8), -1).astype(np.float32) / 255.0))
  requests.append(float_request)
  return [prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=r)) for r in requests]


def write_warmup_requests(saved_model_dir, images_uint8: np.ndarray) -> Path:
  path = Path(saved_model_dir) / WARMUP_FILE
  path.parent.mkdir(parents=True, exist_ok=True)
  with tf.io.TFRecordWriter(str(path)) as writer:
    for log in warmup_requests(images_uint8):
      writer.write(log.SerializeToString())
  return path


def read_warmup_requests(saved_model_dir) -> list:
  path = Path(saved_model_dir) / WARMUP_FILE
  return [prediction_log_pb2.PredictionLog.FromString(record.numpy())
          for record in tf.data.TFRecordDataset(str(path))]
