"""README's TF Serving client code as functions the serve tests call verbatim."""

import json
import urllib.request

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc


def readme_rest_client(url: str, pixels: np.ndarray) -> int:
  """README's REST example, verbatim but for the URL (urllib sends a form Content-Type)."""
  body = json.dumps({"signature_name": "serving_default", "instances": [pixels.tolist()]}).encode()
  reply = urllib.request.urlopen(f"{url}/v1/models/kmnist:predict", body)
  return json.load(reply)["predictions"][0]["class_id"]


def readme_grpc_client(port: int, digits: np.ndarray) -> np.ndarray:
  """README's gRPC example (tensorflow-serving-api), verbatim but for the port."""
  stub = prediction_service_pb2_grpc.PredictionServiceStub(
    grpc.insecure_channel(f"localhost:{port}")
  )
  request = predict_pb2.PredictRequest()
  request.model_spec.name = "kmnist"
  request.model_spec.signature_name = "serving_default"
  request.inputs["image"].CopyFrom(tf.make_tensor_proto(digits))
  response = stub.Predict(request, timeout=10.0)
  return tf.make_ndarray(response.outputs["class_id"])
