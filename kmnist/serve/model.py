"""The kserve.Model that serves kmnist: every protocol's request goes to the served signatures.

kserve calls preprocess -> predict -> postprocess (each timed into its Prometheus histograms) for
  * V1 :predict bodies (TF Serving REST format: a dict, or bytes if the Content-Type was not JSON),
  * V2 Open Inference requests (InferRequest, REST or gRPC): an input named "image" goes to
    serving_default, "x" to serving_float,
  * TF Serving gRPC PredictRequests (routed here by tf_serving_grpc).
preprocess takes the served version once and carries it to predict, so a version swap between the
steps cannot mix two versions in one answer. A request names the version that answers it by
number or label (TF Serving's /versions/<v> and /labels/<label> routes, gRPC's model_spec, Open
Inference's model_version), or the highest served answers. With --enable_batching, predict runs in
a batch with other requests to the same version (batching.py). :explain answers the same outputs
plus the softmax model's evidence map (the drawing page uses it).
"""

import asyncio
import dataclasses
import functools
import hashlib

import kserve
import numpy as np
from kserve.protocol.infer_type import InferRequest
from tensorflow_serving.apis import predict_pb2

from kmnist.serve.operations import metrics
from kmnist.serve.protocols import open_inference, tf_serving_grpc, tf_serving_rest
from kmnist.serve.repository.servable import BadRequest, Servable, Signature

DEFAULT_MAX_BATCH_SIZE = 1000
# Set by the REST routes /v1/models/<name>/versions/<v>:predict and /labels/<label>:predict: the
# version or label the client asked for.
PINNED_VERSION_HEADER = "kmnist-model-version"
PINNED_LABEL_HEADER = "kmnist-model-version-label"


@dataclasses.dataclass
class Prepared:
  """A checked request of any protocol, bound to the version that will answer it."""

  protocol: str  # "v1", "v2" or "tf_serving_grpc"
  servable: Servable
  signature: Signature
  array: np.ndarray
  original: object  # the V1 response format, the InferRequest or the PredictRequest


@dataclasses.dataclass
class Result:
  prepared: Prepared
  outputs: dict


class KmnistModel(kserve.Model):
  """Model `name`, answered by the version `versions` serves when a request starts."""

  def __init__(
    self, name: str, versions, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE, batcher=None
  ):
    super().__init__(name)
    self.versions = versions  # a versions.VersionManager that has loaded a version
    self.max_batch_size = max_batch_size
    self.batcher = batcher  # a batching.Batcher, or None: each request runs alone
    self.ready = versions.current is not None

  def load(self) -> bool:
    self.ready = self.versions.current is not None
    return self.ready

  async def healthy(self) -> bool:
    return self.versions.current is not None

  def stop(self):
    self.versions.stop()
    super().stop()

  def get_input_types(self) -> list[dict]:
    """Open Inference model metadata: one input per signature (a request sends one of them)."""
    return [
      {"name": s.input_name, "datatype": open_inference.DATATYPES[s.dtype], "shape": [-1, *s.shape]}
      for s in self._signatures()
    ]

  def get_output_types(self) -> list[dict]:
    outputs = {}
    for signature in self._signatures():
      for name, spec in signature.function.structured_outputs.items():
        outputs[name] = {
          "name": name,
          "datatype": open_inference.DATATYPES[np.dtype(spec.dtype.as_numpy_dtype)],
          "shape": [-1 if d is None else d for d in spec.shape],
        }
    return [outputs[name] for name in sorted(outputs)]

  def _signatures(self) -> list[Signature]:
    return [s for _, s in sorted(self.versions.current.signatures.items())]

  async def preprocess(self, payload, headers=None) -> Prepared:
    # Off the event loop (as the model's run below): parsing a large body takes milliseconds, and
    # the loop must keep answering the probes.
    prepared = await asyncio.to_thread(self._prepare, payload, headers)
    call = metrics.CURRENT.get()
    if call is not None:  # what the operator's metrics and request log say of it
      call.version, call.examples = str(prepared.servable.version), len(prepared.array)
      call.digest = hashlib.sha256(np.ascontiguousarray(prepared.array).tobytes()).hexdigest()
      call.pixels = prepared.array
    return prepared

  def _prepare(self, payload, headers=None) -> Prepared:
    servable = self._servable(payload, headers or {})  # once: it answers, whatever swaps
    if isinstance(payload, InferRequest):
      signature, array = open_inference.request_array(payload, servable, self.max_batch_size)
      return Prepared("v2", servable, signature, array, payload)
    if isinstance(payload, predict_pb2.PredictRequest):
      signature, array = tf_serving_grpc.request_array(servable, payload, self.max_batch_size)
      return Prepared("tf_serving_grpc", servable, signature, array, payload)
    request = tf_serving_rest.parse_predict(payload, servable, self.max_batch_size)
    return Prepared("v1", servable, request.signature, request.array, request.format)

  def _servable(self, payload, headers) -> Servable:
    """The version the request names (by number or label), else the highest served."""
    if isinstance(payload, predict_pb2.PredictRequest):
      return tf_serving_grpc.servable_for(self.versions, payload.model_spec)
    label = headers.get(PINNED_LABEL_HEADER)
    version = headers.get(PINNED_VERSION_HEADER)
    if isinstance(payload, InferRequest) and payload.model_version:
      version = payload.model_version
    if version is not None and not str(version).isdigit():
      raise BadRequest(f"model version {version!r} is not a version number")
    return self.versions.servable(None if version is None else int(version), label)

  async def predict(self, payload: Prepared, headers=None) -> Result:
    servable, signature = payload.servable, payload.signature
    if self.batcher is None:
      return Result(payload, await asyncio.to_thread(servable.run, signature, payload.array))
    run = functools.partial(servable.run, signature)
    key = (servable, signature.name)  # only requests to one version and signature batch together
    return Result(payload, await self.batcher.run(key, run, payload.array, self.name))

  def postprocess(self, result, headers=None, response_headers=None):
    if not isinstance(result, Result):  # :explain's answer is complete already
      return result
    prepared = result.prepared
    if prepared.protocol == "v1":
      return tf_serving_rest.predict_response(result.outputs, prepared.original)
    if prepared.protocol == "tf_serving_grpc":
      return tf_serving_grpc.predict_response(
        self.name,
        prepared.servable,
        prepared.signature,
        result.outputs,
        list(prepared.original.output_filter),
      )
    return open_inference.response(
      self.name, prepared.original, prepared.servable, prepared.signature, result.outputs
    )

  async def explain(self, payload: Prepared, headers=None) -> dict:
    return await asyncio.to_thread(self._explain, payload)

  def _explain(self, payload: Prepared) -> dict:
    """What the page shows: per image the outputs, and for the softmax model the evidence map of
    the predicted digit (weight x pixel, 28x28; with the bias it sums to the digit's logit)."""
    if payload.protocol != "v1":
      raise BadRequest(':explain takes TF Serving\'s REST format ({"instances": [...]})')
    servable = payload.servable
    outputs = servable.run(payload.signature, payload.array)
    evidence = servable.evidence(payload.array, outputs["class_id"])
    explanations = tf_serving_rest.predict_response(outputs, tf_serving_rest.ROW)["predictions"]
    for i, explanation in enumerate(explanations):
      digit = explanation["class_id"]
      explanation["evidence"] = None if evidence is None else evidence[i].reshape(28, 28).tolist()
      explanation["bias"] = None if servable.bias is None else float(servable.bias[digit])
    return {
      "model_version": str(servable.version),
      "model": servable.model_name,
      "explanations": explanations,
    }
