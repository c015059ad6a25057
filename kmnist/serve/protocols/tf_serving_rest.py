"""TF Serving's REST formats: predict requests (row and columnar) and responses, status, metadata.

    POST /v1/models/kmnist:predict {"signature_name": s, "instances": [..]} -> {"predictions": [..]}
                                   {"signature_name": s, "inputs": ...}     -> {"outputs": {...}}
    GET  /v1/models/kmnist                                  -> {"model_version_status": [...]}
    GET  /v1/models/kmnist/metadata                         -> {"model_spec": .., "metadata": ..}

Row format: each instance is one example, either the input's value (kmnist's signatures have one
input) or {"image": value}. Columnar format: "inputs" is the whole batch, the value or {"image":
batch}. The response mirrors the request: a list of {output: value} per instance, or {output:
batch}. As TF Serving does, the body is read as JSON whatever its Content-Type says (urllib and
curl -d send a form type).
"""

import dataclasses

import numpy as np
import orjson
from google.protobuf import json_format

from kmnist.serve.repository.servable import BadRequest, Servable, Signature, check_array

ROW, COLUMNAR = "row", "columnar"


@dataclasses.dataclass
class PredictRequest:
  """A checked :predict request: which signature, its input, and the format to answer in."""

  signature: Signature
  array: np.ndarray
  format: str


def decode_json(body):
  """The body as JSON (bytes are parsed, anything else is taken as parsed), or BadRequest."""
  if isinstance(body, (bytes, bytearray, memoryview, str)):
    try:
      return orjson.loads(body)
    except orjson.JSONDecodeError as e:
      raise BadRequest(
        f'request body is not valid JSON ({e}); send a JSON object such as {{"instances": [...]}}'
      ) from None
  return body


def parse_predict(body, servable: Servable, max_batch_size: int) -> PredictRequest:
  """A TF Serving REST predict body -> PredictRequest, or BadRequest with one clear reason."""
  body = decode_json(body)
  if not isinstance(body, dict):
    raise BadRequest(
      f'request body must be a JSON object with "instances" or "inputs", got a '
      f"JSON {_json_type(body)}"
    )
  signature_name = body.get("signature_name")
  if signature_name is not None and not isinstance(signature_name, str):
    raise BadRequest(f"signature_name must be a string, got a JSON {_json_type(signature_name)}")
  signature = servable.signature(signature_name)
  has_rows, has_columns = "instances" in body, "inputs" in body
  if has_rows and has_columns:
    raise BadRequest(
      'request has both "instances" (row format) and "inputs" (columnar format); send one'
    )
  if not (has_rows or has_columns):
    raise BadRequest(
      f'request has neither "instances" (row format) nor "inputs" (columnar '
      f"format); its keys are {sorted(body)}"
    )
  if has_rows:
    rows = body["instances"]
    if not isinstance(rows, list):
      raise BadRequest(f'"instances" must be a list of examples, got a JSON {_json_type(rows)}')
    named = [isinstance(row, dict) for row in rows]
    if any(named) and not all(named):
      raise BadRequest(
        f'"instances" mix named ({{"{signature.input_name}": ...}}) and plain '
        f"examples; use one form"
      )
    if rows and all(named):
      rows = [_named(row, signature, f"instances[{i}]") for i, row in enumerate(rows)]
    array = check_array(signature, rows, max_batch_size, where='"instances"')
    return PredictRequest(signature, array, ROW)
  columns = body["inputs"]
  if isinstance(columns, dict):
    columns = _named(columns, signature, '"inputs"')
  array = check_array(signature, columns, max_batch_size, where='"inputs"')
  return PredictRequest(signature, array, COLUMNAR)


def _named(mapping: dict, signature: Signature, where: str):
  if set(mapping) != {signature.input_name}:
    raise BadRequest(
      f"{where} names inputs {sorted(mapping)}, but {signature.name} has one "
      f"input, '{signature.input_name}'"
    )
  return mapping[signature.input_name]


def _json_type(value) -> str:
  names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
  return names.get(type(value), "number")


def predict_response(outputs: dict[str, np.ndarray], form: str) -> dict:
  """{"predictions": [{name: value}, ...]} (row format) or {"outputs": {name: batch}}."""
  columns = {name: value.tolist() for name, value in sorted(outputs.items())}
  if form == COLUMNAR:
    return {"outputs": columns}
  names = list(columns)
  return {
    "predictions": [
      dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]
  }


def model_status(statuses: list[dict]) -> dict:
  """GET /v1/models/<name>[/versions/<v>]."""
  return {"model_version_status": statuses}


def model_metadata(model_name: str, servable: Servable, signature_defs) -> dict:
  """GET /v1/models/<name>/metadata: the SignatureDefMap as TF Serving prints it."""
  return {
    "model_spec": {"name": model_name, "signature_name": "", "version": str(servable.version)},
    "metadata": {
      "signature_def": json_format.MessageToDict(signature_defs, preserving_proto_field_name=True)
    },
  }
