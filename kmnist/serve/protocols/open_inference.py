"""The Open Inference Protocol (KServe's V2, REST and gRPC) for kmnist's signatures: a request's
one input tensor, checked, and the outputs it asks for.

An input named "image" goes to serving_default (UINT8 [N, 28, 28]), "x" to serving_float (FP32
[N, 784]); binary data (gRPC raw_input_contents, REST's binary extension) and JSON data, flat or
nested, are read alike.
"""

import numpy as np
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from kmnist.serve.repository.servable import BadRequest, Servable, Signature, check_array

DATATYPES = {
  np.dtype(np.uint8): "UINT8",
  np.dtype(np.float32): "FP32",
  np.dtype(np.int64): "INT64",
}


def request_array(
  request: InferRequest, servable: Servable, max_batch_size: int
) -> tuple[Signature, np.ndarray]:
  if len(request.inputs) != 1:
    choices = " or ".join(f"'{s.input_name}'" for s in servable.signatures.values())
    raise BadRequest(f"send exactly one input tensor ({choices}), got {len(request.inputs)}")
  infer_input = request.inputs[0]
  signature = servable.signature_for_input(infer_input.name)
  datatype = DATATYPES[signature.dtype]
  where = f"input '{infer_input.name}'"
  if infer_input.datatype != datatype:
    raise BadRequest(
      f"{where} has datatype {infer_input.datatype}, but {signature.name} takes "
      f"{datatype}: {signature.describe()}"
    )
  shape = list(infer_input.shape)
  try:
    # Binary data (gRPC raw_input_contents, REST's binary extension) or JSON data, flat or nested.
    raw = infer_input._raw_data is not None  # kserve keeps it private; as_numpy reads it
    values = infer_input.as_numpy() if raw else np.asarray(infer_input.data)
  except (ValueError, OverflowError) as e:
    raise BadRequest(
      f"{where}: its data is not an array of numbers of shape {shape} ({e})"
    ) from None
  needed = int(np.prod(shape))
  if values.size != needed:
    raise BadRequest(
      f"{where}: its data has {values.size} values, but its shape {shape} needs {needed}"
    )
  return signature, check_array(signature, values.reshape(shape), max_batch_size, where)


def response(
  model_name: str, request: InferRequest, servable: Servable, signature: Signature, outputs: dict
) -> InferResponse:
  wanted = [o.name for o in request.request_outputs or []] or sorted(outputs)
  unknown = sorted(set(wanted) - set(outputs))
  if unknown:
    raise BadRequest(
      f"requested outputs {unknown} are not outputs of "
      f"{signature.name}; it returns {sorted(outputs)}"
    )
  infer_outputs = []
  for name in wanted:
    value = outputs[name]
    infer_output = InferOutput(name=name, shape=list(value.shape), datatype=DATATYPES[value.dtype])
    infer_output.set_data_from_numpy(value, binary_data=request.from_grpc)
    infer_outputs.append(infer_output)
  return InferResponse(
    response_id=request.id or "",
    model_name=model_name,
    infer_outputs=infer_outputs,
    model_version=str(servable.version),
    from_grpc=request.from_grpc,
  )
