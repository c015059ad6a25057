"""TF Serving's gRPC API (PredictionService, ModelService) on kmnist-serve's gRPC port.

So README's `tensorflow-serving-api` client works unchanged against kmnist-serve, beside KServe's
Open Inference gRPC service on the same port. Predict goes through the same kserve.Model as REST
(preprocess, predict, postprocess, with their metrics). The PredictRequest mapping here also
replays a version's warmup records when it is loaded, as TF Serving does.
"""

from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
  get_model_metadata_pb2,
  get_model_status_pb2,
  model_pb2,
  model_service_pb2_grpc,
  predict_pb2,
  prediction_service_pb2_grpc,
)

from kmnist.export import saved_model
from kmnist.serve.repository.servable import BadRequest, Servable, Signature, check_array
from kmnist.serve.repository.versions import VersionManager

WARMUP_RECORDS_LIMIT = 1000  # TF Serving replays at most this many
# TF Serving's error codes (tensorflow/core/protobuf/error_codes.proto) by the names REST reports.
ERROR_CODES = {"OK": 0, "UNKNOWN": 2}
STATES = {
  name: get_model_status_pb2.ModelVersionStatus.State.Value(name)
  for name in ("LOADING", "AVAILABLE", "END")
}


def request_array(
  servable: Servable, request: predict_pb2.PredictRequest, max_batch_size: int
) -> tuple[Signature, np.ndarray]:
  """The signature a PredictRequest names and its checked input, or BadRequest."""
  signature = servable.signature(request.model_spec.signature_name)
  if set(request.inputs) != {signature.input_name}:
    raise BadRequest(
      f"request inputs {sorted(request.inputs)} do not match {signature.name}'s "
      f"['{signature.input_name}']: {signature.describe()}"
    )
  tensor = request.inputs[signature.input_name]
  expected = tf.as_dtype(signature.dtype)
  if tensor.dtype != expected.as_datatype_enum:
    raise BadRequest(
      f"input '{signature.input_name}' is {tf.as_dtype(tensor.dtype).name}, but "
      f"{signature.name} takes {expected.name}: {signature.describe()}"
    )
  try:
    array = tf.make_ndarray(tensor)
  except (ValueError, TypeError) as e:
    raise BadRequest(
      f"input '{signature.input_name}' is not a readable TensorProto ({e})"
    ) from None
  where = f"input '{signature.input_name}'"
  return signature, check_array(signature, array, max_batch_size, where=where)


def servable_for(versions: VersionManager, spec: model_pb2.ModelSpec) -> Servable:
  """The servable a ModelSpec names: by version_label, by version, or the highest served."""
  if spec.version_label:
    return versions.servable(label=spec.version_label)
  return versions.servable(spec.version.value if spec.HasField("version") else None)


def predict_response(
  model_name: str, servable: Servable, signature: Signature, outputs: dict, output_filter=()
) -> predict_pb2.PredictResponse:
  unknown = sorted(set(output_filter) - set(outputs))
  if unknown:
    raise BadRequest(
      f"output_filter names {unknown}, which {signature.name} does not return; it "
      f"returns {list(signature.outputs)}"
    )
  response = predict_pb2.PredictResponse()
  response.model_spec.name = model_name
  response.model_spec.signature_name = signature.name
  response.model_spec.version.value = servable.version
  for name in output_filter or outputs:
    response.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name]))
  return response


def warm_up(servable: Servable) -> int:
  """Replays the version's warmup records (assets.extra/tf_serving_warmup_requests), or runs
  each signature once on a blank digit if it has none. Returns the number of calls."""
  calls = 0
  if (Path(servable.path) / saved_model.WARMUP_FILE).is_file():
    for log in saved_model.read_warmup_requests(servable.path)[:WARMUP_RECORDS_LIMIT]:
      if log.HasField("predict_log"):
        signature, array = request_array(servable, log.predict_log.request, 2**31)
        servable.run(signature, array)
        calls += 1
  if not calls:
    for signature in servable.signatures.values():
      servable.run(signature, np.zeros((1,) + signature.shape, signature.dtype))
      calls += 1
  return calls


def load_and_warm_up(directory, version: int) -> Servable:
  """What TF Serving does before a version serves: load it, then replay its warmup requests."""
  servable = Servable.load(directory, version)
  warm_up(servable)
  return servable


def signature_def_map(servable: Servable) -> get_model_metadata_pb2.SignatureDefMap:
  """The served signatures' SignatureDefs exactly as saved_model.pb has them."""
  saved = saved_model_pb2.SavedModel.FromString(
    servable.saved_model_pb or (servable.path / "saved_model.pb").read_bytes()
  )
  result = get_model_metadata_pb2.SignatureDefMap()
  for name, signature_def in saved.meta_graphs[0].signature_def.items():
    if name in servable.signatures:
      result.signature_def[name].CopyFrom(signature_def)
  return result


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
  """Predict and GetModelMetadata. (No Classify/Regress: README explains why.)"""

  def __init__(self, dataplane):
    self._dataplane = dataplane

  async def Predict(self, request, context):  # noqa: N802 (gRPC's method name)
    _require_name(request.model_spec)
    response, _ = await self._dataplane.infer(model_name=request.model_spec.name, request=request)
    return response

  async def GetModelMetadata(self, request, context):  # noqa: N802 (gRPC's method name)
    _require_name(request.model_spec)
    if list(request.metadata_field) != ["signature_def"]:
      raise BadRequest(
        f"metadata_field must be ['signature_def'] (the only one TF Serving "
        f"supports), got {list(request.metadata_field)}"
      )
    versions = self._dataplane.get_model_from_registry(request.model_spec.name).versions
    servable = servable_for(versions, request.model_spec)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = request.model_spec.name
    response.model_spec.version.value = servable.version
    response.metadata["signature_def"].Pack(signature_def_map(servable))
    return response


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
  """GetModelStatus, from the same history as REST's GET /v1/models/<name>."""

  def __init__(self, dataplane):
    self._dataplane = dataplane

  async def GetModelStatus(self, request, context):  # noqa: N802 (gRPC's method name)
    spec = request.model_spec
    _require_name(spec)
    versions = self._dataplane.get_model_from_registry(spec.name).versions
    version = spec.version.value if spec.HasField("version") else None
    statuses = versions.status(version, spec.version_label or None)
    response = get_model_status_pb2.GetModelStatusResponse()
    for status in statuses:
      entry = response.model_version_status.add(
        version=int(status["version"]), state=STATES[status["state"]]
      )
      entry.status.error_code = ERROR_CODES[status["status"]["error_code"]]
      entry.status.error_message = status["status"]["error_message"]
    return response


def _require_name(spec: model_pb2.ModelSpec) -> None:
  if not spec.name:
    raise BadRequest("model_spec.name is empty; name the model, e.g. 'kmnist'")


def add_to_server(server, dataplane) -> None:
  """Adds TF Serving's two services to a grpc.aio server."""
  prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
    PredictionServicer(dataplane), server
  )
  model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(dataplane), server)
