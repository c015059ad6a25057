"""kmnist.serve.model: the kserve.Model, called the way kserve's data plane calls it."""

import asyncio
import json

import numpy as np
import pytest
import tensorflow as tf
from kserve.model_repository import ModelRepository
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.infer_type import InferInput, InferRequest, RequestedOutput
from tensorflow_serving.apis import model_pb2, predict_pb2

from kmnist.export import saved_model
from kmnist.models import registry
from kmnist.serve import model as serve_model
from kmnist.serve.protocols import tf_serving_grpc
from kmnist.serve.repository import versions
from kmnist.serve.repository.servable import BadRequest


@pytest.fixture(scope="module")
def base(tmp_path_factory, trained_model):
  base = tmp_path_factory.mktemp("model") / "saved_model"
  saved_model.export_saved_model(trained_model, base)
  return base


@pytest.fixture(scope="module")
def served(base):
  """(KmnistModel, DataPlane) serving version 1 of the synthetic model."""
  manager = versions.VersionManager(base, tf_serving_grpc.load_and_warm_up, poll_seconds=0)
  manager.load_initial()
  model = serve_model.KmnistModel("kmnist", manager, max_batch_size=100)
  repository = ModelRepository()
  repository.update(model)
  return model, DataPlane(model_registry=repository)


@pytest.fixture(scope="module")
def digits(synthetic_datasets):
  return synthetic_datasets.test.images[:6]


@pytest.fixture(scope="module")
def expected(trained_model, digits):
  return trained_model.predict(digits / 255.0, verbose=0)


def infer(dataplane, request, model_name="kmnist"):
  response, _ = asyncio.run(dataplane.infer(model_name, request))
  return response


def test_v1_rows_and_columns(served, digits, expected):
  _, dataplane = served
  rows = infer(dataplane, {"instances": digits.tolist()})
  assert [p["class_id"] for p in rows["predictions"]] == expected.argmax(-1).tolist()
  np.testing.assert_allclose([p["logits"] for p in rows["predictions"]], expected, atol=1e-4)
  columns = infer(dataplane, json.dumps({"inputs": {"image": digits.tolist()}}).encode())
  assert columns["outputs"]["class_id"] == expected.argmax(-1).tolist()


def test_v2_json_flat_nested_and_binary(served, digits, expected):
  _, dataplane = served
  flat = InferInput("image", [6, 28, 28], "UINT8", digits.ravel().tolist())
  nested = InferInput("image", [6, 28, 28], "UINT8", digits.tolist())
  binary = InferInput("image", [6, 28, 28], "UINT8")
  binary._raw_data = digits.tobytes()  # as kserve decodes gRPC raw_input_contents
  floats = InferInput("x", [6, 784], "FP32", (digits.reshape(6, -1) / 255.0).ravel().tolist())
  for infer_input in (flat, nested, binary, floats):
    response = infer(dataplane, InferRequest("kmnist", [infer_input], request_id="r1"))
    assert response.model_version == "1" and response.id == "r1"
    outputs = {o.name: o for o in response.outputs}
    assert set(outputs) == {"class_id", "logits", "probabilities"}
    assert outputs["class_id"].datatype == "INT64" and outputs["class_id"].shape == [6]
    assert list(outputs["class_id"].data) == expected.argmax(-1).tolist()
  only = InferRequest("kmnist", [flat], request_outputs=[RequestedOutput("class_id")])
  rest, _ = infer(dataplane, only).to_rest()
  assert [o["name"] for o in rest["outputs"]] == ["class_id"]


@pytest.mark.parametrize(
  "inputs, message",
  [
    (
      [InferInput("image", [1, 28, 28], "FP32", [0.0] * 784)],
      "has datatype FP32, but serving_default takes UINT8",
    ),
    (
      [InferInput("image", [1, 28, 28], "UINT8", [0] * 783)],
      "has 783 values, but its shape " r"\[1, 28, 28\] needs 784",
    ),
    ([InferInput("image", [1, 784], "UINT8", [0] * 784)], r"shape \[1, 784\], expected"),
    ([InferInput("image", [1, 28, 28], "UINT8", [999] * 784)], "out of range"),
    ([InferInput("pixels", [1, 28, 28], "UINT8", [0] * 784)], "'pixels' is not an input"),
    ([InferInput("image", [1, 28, 28], "UINT8", [0] * 784)] * 2, "send exactly one input"),
  ],
)
def test_v2_refusals(served, inputs, message):
  with pytest.raises(BadRequest, match=message):
    infer(served[1], InferRequest("kmnist", inputs))
  request = InferRequest(
    "kmnist",
    [InferInput("image", [1, 28, 28], "UINT8", [0] * 784)],
    request_outputs=[RequestedOutput("scores")],
  )
  with pytest.raises(BadRequest, match=r"requested outputs \['scores'\]"):
    infer(served[1], request)


def test_tf_serving_predict_request(served, digits, expected):
  request = predict_pb2.PredictRequest(
    model_spec=model_pb2.ModelSpec(name="kmnist"), output_filter=["class_id"]
  )
  request.inputs["image"].CopyFrom(tf.make_tensor_proto(digits))
  response = infer(served[1], request)
  assert isinstance(response, predict_pb2.PredictResponse)
  np.testing.assert_array_equal(tf.make_ndarray(response.outputs["class_id"]), expected.argmax(-1))


def test_explain_adds_the_evidence_map(served, digits, expected):
  model, _ = served
  response, _ = asyncio.run(
    model({"instances": digits[:2].tolist()}, verb=serve_model.kserve.model.InferenceVerb.EXPLAIN)
  )
  assert response["model_version"] == "1" and response["model"] == "softmax"
  for explanation, logits in zip(response["explanations"], expected[:2], strict=True):
    digit = explanation["class_id"]
    assert digit == logits.argmax()
    evidence = np.array(explanation["evidence"])
    assert evidence.shape == (28, 28)
    assert evidence.sum() + explanation["bias"] == pytest.approx(logits[digit], abs=1e-3)


def test_metadata_lists_both_inputs_and_the_outputs(served):
  model, _ = served
  assert model.get_input_types() == [
    {"name": "image", "datatype": "UINT8", "shape": [-1, 28, 28]},
    {"name": "x", "datatype": "FP32", "shape": [-1, 784]},
  ]
  assert [o["name"] for o in model.get_output_types()] == ["class_id", "logits", "probabilities"]


def test_a_request_is_answered_by_the_version_it_started_on(base, tmp_path, digits):
  """A swap between preprocess and predict must not mix versions (nor fail the request)."""
  local = tmp_path / "saved_model"
  import shutil

  shutil.copytree(base / "1", local / "1")
  manager = versions.VersionManager(local, tf_serving_grpc.load_and_warm_up, poll_seconds=0)
  manager.load_initial()
  model = serve_model.KmnistModel("kmnist", manager)
  prepared = asyncio.run(model.preprocess({"instances": digits.tolist()}))
  zero = registry.build()  # untrained: every logit 0, so class 0 everywhere
  saved_model.export_saved_model(zero, local, version=2)
  manager.poll_once()
  assert manager.current.version == 2
  answer = model.postprocess(asyncio.run(model.predict(prepared)))
  old = [p["class_id"] for p in answer["predictions"]]
  assert old != [0] * len(digits) and prepared.servable.version == 1
  new = model.postprocess(
    asyncio.run(model.predict(asyncio.run(model.preprocess({"instances": digits.tolist()}))))
  )
  assert [p["class_id"] for p in new["predictions"]] == [0] * len(digits)
