"""kmnist.serve.protocols.tf_serving_rest: TF Serving's REST request and response formats."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kmnist.export import saved_model
from kmnist.serve.protocols import tf_serving_rest as rest
from kmnist.serve.repository import servable as servable_lib
from kmnist.serve.repository.servable import BadRequest


@pytest.fixture(scope="module")
def servable(tmp_path_factory, trained_model):
  version_dir = saved_model.export_saved_model(trained_model, tmp_path_factory.mktemp("rest") / "b")
  return servable_lib.Servable.load(version_dir, 1)


@pytest.fixture(scope="module")
def digits(synthetic_datasets):
  return synthetic_datasets.test.images[:3]


def bodies(digits):
  """Every way TF Serving's REST API accepts the same three digits, by (signature, format)."""
  floats = (digits.reshape(3, -1) / 255.0).tolist()
  return {
    "row": {"instances": digits.tolist()},
    "row, signature named": {"signature_name": "serving_default", "instances": digits.tolist()},
    "row, input named": {"instances": [{"image": d.tolist()} for d in digits]},
    "columnar": {"inputs": digits.tolist()},
    "columnar, input named": {"inputs": {"image": digits.tolist()}},
    "row, float": {"signature_name": "serving_float", "instances": floats},
    "columnar, float named": {"signature_name": "serving_float", "inputs": {"x": floats}},
  }


@pytest.mark.parametrize("form", list(bodies(np.zeros((3, 28, 28), np.uint8))))
def test_every_request_format_gives_the_same_input(servable, digits, form):
  body = bodies(digits)[form]
  for sent in (body, json.dumps(body).encode()):  # parsed by kserve, or raw bytes (form type)
    request = rest.parse_predict(sent, servable, max_batch_size=10)
    assert request.format == (rest.COLUMNAR if "columnar" in form else rest.ROW)
    if "float" in form:
      assert request.signature.name == "serving_float"
      np.testing.assert_allclose(request.array * 255, digits.reshape(3, -1), atol=1e-4)
    else:
      assert request.signature.name == "serving_default" and request.array.dtype == np.uint8
      np.testing.assert_array_equal(request.array, digits)


def test_responses_in_tf_servings_shapes():
  outputs = {
    "class_id": np.array([7, 1]),
    "probabilities": np.eye(2, 10, dtype=np.float32),
    "logits": np.zeros((2, 10), np.float32),
  }
  rows = rest.predict_response(outputs, rest.ROW)
  assert list(rows) == ["predictions"] and len(rows["predictions"]) == 2
  assert rows["predictions"][0] == {
    "class_id": 7,
    "logits": [0.0] * 10,
    "probabilities": [1.0] + [0.0] * 9,
  }
  columns = rest.predict_response(outputs, rest.COLUMNAR)
  assert columns == {
    "outputs": {
      "class_id": [7, 1],
      "logits": [[0.0] * 10] * 2,
      "probabilities": np.eye(2, 10).tolist(),
    }
  }
  json.dumps(rows), json.dumps(columns)  # plain JSON types only


@pytest.mark.parametrize(
  "body, message",
  [
    (b"{not json", r"request body is not valid JSON \(.*\); send a JSON object"),
    (b"", "request body is not valid JSON"),
    ([1, 2], 'must be a JSON object with "instances" or "inputs", got a JSON array'),
    ({"instances": [], "inputs": []}, 'both "instances" \\(row format\\) and "inputs"'),
    (
      {"examples": []},
      r'neither "instances" .* nor "inputs" .*; its keys are \[\'examples\'\]',
    ),
    ({"instances": {"image": []}}, '"instances" must be a list of examples, got a JSON object'),
    ({"instances": [{"image": [[0] * 28] * 28}, [[0] * 28] * 28]}, "mix named"),
    ({"instances": [{"pixels": [[0] * 28] * 28}]}, r"instances\[0\] names inputs \['pixels'\]"),
    (
      {"inputs": {"image": [], "x": []}},
      "names inputs \\['image', 'x'\\], but serving_default",
    ),
    (
      {"signature_name": 3, "instances": []},
      "signature_name must be a string, got a JSON number",
    ),
    ({"signature_name": "classify", "instances": []}, "'classify' is not a signature"),
    ({"instances": []}, '"instances" has shape \\[0\\], expected \\[N, 28, 28\\]'),
    ({"instances": [[[0] * 28] * 28] * 11}, "batch of 11 examples is over .* limit of 10"),
    ({"instances": [[[300] * 28] * 28]}, "out of range"),
  ],
)
def test_bad_requests_get_one_clear_reason(servable, body, message):
  with pytest.raises(BadRequest, match=message):
    rest.parse_predict(body, servable, max_batch_size=10)


def test_model_status_and_metadata_shapes(servable):
  from kmnist.serve.protocols import tf_serving_grpc

  status = [
    {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
  ]
  assert rest.model_status(status) == {"model_version_status": status}
  metadata = rest.model_metadata("kmnist", servable, tf_serving_grpc.signature_def_map(servable))
  assert metadata["model_spec"] == {"name": "kmnist", "signature_name": "", "version": "1"}
  defs = metadata["metadata"]["signature_def"]["signature_def"]
  assert set(defs) == {"serving_default", "serving_float"}
  image = defs["serving_default"]["inputs"]["image"]
  assert image["dtype"] == "DT_UINT8"
  assert [d["size"] for d in image["tensor_shape"]["dim"]] == ["-1", "28", "28"]
  assert defs["serving_float"]["method_name"] == "tensorflow/serving/predict"


# Any request body at all: a checked request or one BadRequest (HTTP 400), never a server error.
JSON = st.recursive(
  st.none()
  | st.booleans()
  | st.integers(-(2**70), 2**70)
  | st.floats(allow_nan=False)
  | st.text(max_size=5),
  lambda children: (
    st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=3)
  ),
  max_leaves=30,
)
PIXEL_ROWS = st.lists(
  st.lists(
    st.lists(st.integers(-5, 300) | st.floats(-1, 2) | st.just("1"), min_size=28, max_size=28),
    min_size=28,
    max_size=28,
  ),
  min_size=0,
  max_size=2,
)


def parse_or_bad_request(body, servable):
  try:
    request = rest.parse_predict(body, servable, max_batch_size=4)
  except BadRequest as e:
    assert str(e) and "\n" not in str(e)
    return None
  assert request.array.shape[1:] == request.signature.shape and 1 <= len(request.array) <= 4
  return request


@settings(max_examples=150)
@given(
  body=st.fixed_dictionaries(
    {},
    optional={
      "signature_name": st.sampled_from(["serving_default", "serving_float", "nope"]) | JSON,
      "instances": PIXEL_ROWS | JSON,
      "inputs": PIXEL_ROWS | st.fixed_dictionaries({"image": PIXEL_ROWS}) | JSON,
    },
  )
  | JSON
)
def test_any_json_body_is_a_request_or_one_bad_request_line(servable, body):
  parse_or_bad_request(json.dumps(body).encode(), servable)


@settings(max_examples=100)
@given(body=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_are_a_request_or_one_bad_request_line(servable, body):
  parse_or_bad_request(body, servable)
