"""README's TF Serving client code (SERVE_README.md) as functions the serve tests call verbatim, and
the fixture that lets those tests reach their own server on 127.0.0.1."""

import _socket
import importlib.util
import json
import socket
import sys
import urllib.request
from unittest import mock

import grpc
import numpy as np
import pytest
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
      grpc.insecure_channel(f"localhost:{port}"))
  request = predict_pb2.PredictRequest()
  request.model_spec.name = "kmnist"
  request.model_spec.signature_name = "serving_default"
  request.inputs["image"].CopyFrom(tf.make_tensor_proto(digits))
  response = stub.Predict(request, timeout=10.0)
  return tf.make_ndarray(response.outputs["class_id"])


# conftest's `no_network` fixture (session-wide once a real-data test has run) refuses every socket
# connection made from this process. The serve tests talk to their own server on 127.0.0.1, so they
# allow loopback connections and still refuse everything else. A pristine copy of the socket module
# provides the functions the guard replaced.
_SOCKET = importlib.util.module_from_spec(importlib.util.spec_from_file_location(
    "_kmnist_pristine_socket", socket.__file__))
sys.modules[_SOCKET.__name__] = _SOCKET  # socket.py looks itself up while it loads
_SOCKET.__spec__.loader.exec_module(_SOCKET)
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _host(address) -> str:
  return address[0] if isinstance(address, tuple) else str(address)


def _loopback_only(function):
  def guarded(first, *args, **kwargs):
    address = args[0] if isinstance(first, socket.socket) else first
    if _host(address) not in LOOPBACK:
      raise AssertionError(f"serve tests only connect to this machine, not {address!r}")
    return function(first, *args, **kwargs)
  return guarded


def _create_connection(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, *args, **kwargs):
  if timeout is socket._GLOBAL_DEFAULT_TIMEOUT:  # each socket module has its own "no timeout given"
    timeout = _SOCKET._GLOBAL_DEFAULT_TIMEOUT
  return _SOCKET.create_connection(address, timeout, *args, **kwargs)


@pytest.fixture(scope="module")
def loopback_allowed():
  """Sockets may connect to 127.0.0.1 (and only there) for the module's duration."""
  with mock.patch.object(socket.socket, "connect", _loopback_only(_socket.socket.connect)), \
       mock.patch.object(socket, "create_connection", _loopback_only(_create_connection)), \
       mock.patch.object(socket, "getaddrinfo", _loopback_only(_socket.getaddrinfo)):
    yield
