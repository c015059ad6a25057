"""TF Serving's batching parameters (--batching_parameters_file): the file, read and checked.

The file is a BatchingParameters message (tensorflow_serving/servables/tensorflow/
session_bundle_config.proto) in protobuf text format, e.g.

    max_batch_size { value: 64 }
    batch_timeout_micros { value: 0 }
    max_enqueued_batches { value: 10 }
    num_batch_threads { value: 2 }

tensorflow-serving-api does not ship that proto, so the message is declared here with the same
package, names, numbers and types, and parsed by protobuf's own text format parser: a file TF
Serving reads reads the same here. Unset fields take TF Serving's defaults (its server with
--enable_batching and no file). No TensorFlow here.
"""

import dataclasses
import os
from pathlib import Path

from google.protobuf import (
  descriptor_pb2,
  descriptor_pool,
  message_factory,
  wrappers_pb2,
)

from kmnist.serve.repository import model_config
from kmnist.util.errors import KmnistError, one_line

# (field, number, google.protobuf wrapper) as session_bundle_config.proto declares them.
WRAPPED_FIELDS = [
  ("max_batch_size", 1, "Int64Value"),
  ("batch_timeout_micros", 2, "Int64Value"),
  ("max_enqueued_batches", 3, "Int64Value"),
  ("num_batch_threads", 4, "Int64Value"),
  ("thread_pool_name", 5, "StringValue"),
  ("enable_large_batch_splitting", 8, "BoolValue"),
  ("max_execution_batch_size", 9, "Int64Value"),
]


@dataclasses.dataclass(frozen=True)
class Parameters:
  """The batch scheduler's settings; the defaults are TF Serving's (SharedBatchScheduler's
  QueueOptions and Options)."""

  max_batch_size: int = 1000
  batch_timeout_micros: int = 0
  max_enqueued_batches: int = 10
  num_batch_threads: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
  thread_pool_name: str = "model_server_batch_threads"
  allowed_batch_sizes: tuple[int, ...] = ()


def _message_class():
  """BatchingParameters as a protobuf message class, in a pool of its own."""
  proto = descriptor_pb2.FileDescriptorProto(
    name="kmnist/serve/repository/batching_parameters.proto",
    package="tensorflow.serving",
    syntax="proto3",
    dependency=["google/protobuf/wrappers.proto"],
  )
  message = proto.message_type.add(name="BatchingParameters")
  field = descriptor_pb2.FieldDescriptorProto
  for name, number, wrapper in WRAPPED_FIELDS:
    message.field.add(
      name=name,
      number=number,
      label=field.LABEL_OPTIONAL,
      type=field.TYPE_MESSAGE,
      type_name=f".google.protobuf.{wrapper}",
    )
  message.field.add(
    name="allowed_batch_sizes", number=6, label=field.LABEL_REPEATED, type=field.TYPE_INT64
  )
  message.field.add(
    name="pad_variable_length_inputs", number=7, label=field.LABEL_OPTIONAL, type=field.TYPE_BOOL
  )
  pool = descriptor_pool.DescriptorPool()
  pool.Add(descriptor_pb2.FileDescriptorProto.FromString(wrappers_pb2.DESCRIPTOR.serialized_pb))
  pool.Add(proto)
  return message_factory.GetMessageClass(
    pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
  )


BatchingParameters = _message_class()


def read(path) -> Parameters:
  """The parameters of a --batching_parameters_file; KmnistError naming the problem otherwise."""
  source = f"--batching_parameters_file={path}"
  try:
    text = Path(path).read_text()
  except (OSError, UnicodeDecodeError) as e:
    raise KmnistError(f"{source} cannot be read ({one_line(e)}); give a readable file") from None
  example = "max_batch_size { value: 64 }"
  message = model_config.parse_text(text, BatchingParameters(), source, example)
  return from_message(message, source)


def from_message(message, source: str) -> Parameters:
  values = {
    name: getattr(message, name).value
    for name, _, _ in WRAPPED_FIELDS
    if message.HasField(name) and name in Parameters.__dataclass_fields__
  }
  if message.enable_large_batch_splitting.value:
    raise KmnistError(
      f"{source}: enable_large_batch_splitting is not supported by kmnist-serve; a request "
      "larger than max_batch_size is refused instead (remove the line)"
    )
  parameters = Parameters(**values, allowed_batch_sizes=tuple(message.allowed_batch_sizes))
  for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
    if getattr(parameters, name) < 1:
      raise KmnistError(f"{source}: {name} is {getattr(parameters, name)}; it must be at least 1")
  if parameters.batch_timeout_micros < 0:
    raise KmnistError(
      f"{source}: batch_timeout_micros is {parameters.batch_timeout_micros}; it must be 0 or more"
    )
  sizes = parameters.allowed_batch_sizes
  if sizes and (list(sizes) != sorted(set(sizes)) or sizes[0] < 1):
    raise KmnistError(f"{source}: allowed_batch_sizes {list(sizes)} must be positive and rising")
  if sizes and sizes[-1] != parameters.max_batch_size:  # TF Serving's words
    raise KmnistError(
      f"{source}: Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
      f"{sizes[-1]}; expected {parameters.max_batch_size}"
    )
  return parameters
