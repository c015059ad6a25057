"""kmnist.serve.protocols.tf_serving_grpc: PredictRequests as TF Serving maps them, warmup replay,
metadata.

The gRPC services themselves are exercised over the wire in test_serve_server.py.
"""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2

from kmnist.export import saved_model
from kmnist.serve.protocols import tf_serving_grpc
from kmnist.serve.repository import servable as servable_lib
from kmnist.serve.repository import versions
from kmnist.serve.repository.servable import BadRequest


@pytest.fixture(scope="module")
def servable(tmp_path_factory, synthetic_datasets, trained_model):
  version_dir = saved_model.export_saved_model(
    trained_model,
    tmp_path_factory.mktemp("g") / "b",
    warmup_images=synthetic_datasets.test.images[:5],
  )
  return servable_lib.Servable.load(version_dir, 1)


def predict_request(array, signature="", alias="image", version=None):
  request = predict_pb2.PredictRequest(
    model_spec=model_pb2.ModelSpec(name="kmnist", signature_name=signature)
  )
  if version is not None:
    request.model_spec.version.value = version
  request.inputs[alias].CopyFrom(tf.make_tensor_proto(array))
  return request


def test_request_array_and_response(servable, synthetic_datasets, trained_model):
  images = synthetic_datasets.test.images[:4]
  signature, array = tf_serving_grpc.request_array(servable, predict_request(images), 10)
  np.testing.assert_array_equal(array, images)
  outputs = servable.run(signature, array)
  response = tf_serving_grpc.predict_response("kmnist", servable, signature, outputs, ["class_id"])
  assert list(response.outputs) == ["class_id"] and response.model_spec.version.value == 1
  np.testing.assert_array_equal(
    tf.make_ndarray(response.outputs["class_id"]),
    trained_model.predict(images / 255.0, verbose=0).argmax(-1),
  )
  full = tf_serving_grpc.predict_response("kmnist", servable, signature, outputs)
  assert set(full.outputs) == {"class_id", "probabilities", "logits"}
  with pytest.raises(BadRequest, match=r"output_filter names \['scores'\]"):
    tf_serving_grpc.predict_response("kmnist", servable, signature, outputs, ["scores"])


@pytest.mark.parametrize(
  "request_args, message",
  [
    (
      (np.zeros((1, 28, 28), np.uint8), "", "x"),
      r"inputs \['x'\] do not match serving_default",
    ),
    (
      (np.zeros((1, 28, 28), np.float32),),
      "input 'image' is float32, but serving_default takes uint8",
    ),
    ((np.zeros((1, 784), np.uint8), "serving_float", "x"), "is uint8, but serving_float takes"),
    ((np.zeros((1, 28, 27), np.uint8),), r"shape \[1, 28, 27\], expected \[N, 28, 28\]"),
    ((np.zeros((1, 28, 28), np.uint8), "serving_classify"), "is not a signature"),
  ],
)
def test_request_array_refusals(servable, request_args, message):
  with pytest.raises(BadRequest, match=message):
    tf_serving_grpc.request_array(servable, predict_request(*request_args), 10)


def test_a_model_spec_names_its_servable_by_version_or_label(servable):
  manager = versions.VersionManager(servable.path.parent, lambda d, v: servable, poll_seconds=0)
  manager.load_initial()
  manager.labels = {"stable": 1, "canary": 2}
  for spec in (
    predict_request(np.zeros(1)).model_spec,
    predict_request(np.zeros(1), version=1).model_spec,
    model_pb2.ModelSpec(name="kmnist", version_label="stable"),
  ):
    assert tf_serving_grpc.servable_for(manager, spec) is servable
  with pytest.raises(versions.VersionNotFoundError, match=r"Specific\(kmnist, 2\)"):
    tf_serving_grpc.servable_for(manager, predict_request(np.zeros(1), version=2).model_spec)
  with pytest.raises(versions.VersionNotFoundError, match=r"Specific\(kmnist, 2\)"):
    tf_serving_grpc.servable_for(
      manager, model_pb2.ModelSpec(name="kmnist", version_label="canary")
    )
  with pytest.raises(versions.UnknownLabelError, match="Unrecognized servable version label: beta"):
    tf_serving_grpc.servable_for(manager, model_pb2.ModelSpec(name="kmnist", version_label="beta"))


def test_warm_up_replays_the_versions_records(servable, tmp_path, trained_model):
  assert tf_serving_grpc.warm_up(servable) == 5 + 1 + 1  # singles, the batch, the float request
  bare = saved_model.export_saved_model(trained_model, tmp_path)  # no warmup records
  assert tf_serving_grpc.warm_up(servable_lib.Servable.load(bare, 1)) == 2  # each signature once
