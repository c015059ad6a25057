"""One loaded version of the SavedModel: its signatures, what they accept, and running them.

Every request is checked here against the signature it names (shape, dtype, pixel range, batch
size), so the REST, Open Inference and gRPC front ends share one set of rules and one wording of
the errors. The signatures are called as they are; nothing of the model is re-implemented.
"""

import dataclasses
import logging
from pathlib import Path

import numpy as np
import tensorflow as tf
from kserve.errors import InvalidInput

from kmnist.export import record
from kmnist.export.signatures import SERVING_SIGNATURE
from kmnist.util.errors import KmnistError, one_line

logger = logging.getLogger("kmnist.serve")


class BadRequest(InvalidInput):
  """A request the client must fix: HTTP 400 / gRPC INVALID_ARGUMENT, {"error": reason}."""


@dataclasses.dataclass(frozen=True)
class Signature:
  """One serving signature as the SavedModel declares it (one input, named outputs)."""

  name: str
  input_name: str
  dtype: np.dtype
  shape: tuple  # per example: (28, 28) for serving_default's image, (784,) for serving_float's x
  outputs: tuple  # output names, sorted
  function: object = dataclasses.field(repr=False, compare=False)

  def describe(self) -> str:
    kind = "uint8 pixels 0-255" if self.dtype == np.uint8 else "float pixels in [0, 1]"
    return f"{self.name} takes '{self.input_name}': {kind}, shape {self.batch_shape()}"

  def batch_shape(self) -> str:
    return "[N, " + ", ".join(map(str, self.shape)) + "]"


def read_signatures(loaded) -> dict[str, Signature]:
  """The loaded SavedModel's signatures that take exactly one tensor, as kmnist's all do."""
  signatures = {}
  for name, function in loaded.signatures.items():
    _, kwargs = function.structured_input_signature
    if len(kwargs) != 1:
      continue
    ((input_name, spec),) = kwargs.items()
    signatures[name] = Signature(
      name=name,
      input_name=input_name,
      dtype=np.dtype(spec.dtype.as_numpy_dtype),
      shape=tuple(spec.shape[1:]),
      outputs=tuple(sorted(function.structured_outputs)),
      function=function,
    )
  return signatures


def check_array(
  signature: Signature, array, max_batch_size: int, where: str = "input"
) -> np.ndarray:
  """`array` (anything np.asarray takes) as the signature's input, or BadRequest saying why not.

  uint8 pixels must be integers (as TF Serving requires for DT_UINT8) from 0 to 255; float pixels
  finite numbers in [0, 1] (kmnist's contract: the tutorial's x).
  """
  try:
    array = np.asarray(array)
  except (ValueError, OverflowError) as e:  # ragged nesting, or an integer too big for numpy
    raise BadRequest(
      f"{where} is not a rectangular array of numbers ({one_line(e)}); {signature.describe()}"
    ) from None
  if array.ndim != len(signature.shape) + 1 or tuple(array.shape[1:]) != signature.shape:
    raise BadRequest(
      f"{where} has shape {list(array.shape)}, expected {signature.batch_shape()}: "
      f"{signature.describe()}"
    )
  if len(array) == 0:
    raise BadRequest(f"{where} holds no examples (shape {list(array.shape)}); send at least one")
  if len(array) > max_batch_size:
    raise BadRequest(
      f"batch of {len(array)} examples is over this server's limit of "
      f"{max_batch_size} per request (kmnist-serve --max_batch_size); split it"
    )
  if signature.dtype == np.uint8:
    if array.dtype.kind not in "iu":
      raise BadRequest(
        f"{where} must hold integers 0-255 for {signature.name} (uint8), got "
        f"{_kind(array)}; for float pixels in [0, 1] use signature_name 'serving_float'"
      )
    if array.min() < 0 or array.max() > 255:
      raise BadRequest(
        f"{where} has a pixel value out of range ({_extreme(array, 0, 255)}); "
        f"uint8 pixels must be 0-255"
      )
  elif np.issubdtype(signature.dtype, np.floating):
    if array.dtype.kind not in "iuf":
      raise BadRequest(
        f"{where} must hold numbers for {signature.name} ({signature.dtype}), got {_kind(array)}"
      )
    if not np.isfinite(array).all():
      raise BadRequest(
        f"{where} holds a value that is not a finite number; float pixels must be in [0, 1]"
      )
    if array.min() < 0 or array.max() > 1:
      raise BadRequest(
        f"{where} has a pixel value out of range ({_extreme(array, 0, 1)}); float "
        f"pixels must be in [0, 1] (divide 0-255 pixels by 255)"
      )
  return array.astype(signature.dtype, copy=False)


def _kind(array: np.ndarray) -> str:
  kinds = {
    "b": "booleans",
    "f": "non-integer numbers",
    "U": "strings",
    "S": "strings",
    "O": "mixed or oversized values",
  }
  return kinds.get(array.dtype.kind, str(array.dtype))


def _extreme(array: np.ndarray, lowest, highest) -> str:
  """The first offending value and where it is, e.g. '300 at [0, 3, 4]'."""
  flat = int(np.argmin(array)) if array.min() < lowest else int(np.argmax(array))
  index = np.unravel_index(flat, array.shape)
  return f"{array[index].item()} at {list(map(int, index))}"


class Servable:
  """One version: its signatures, its model's name, and the kernel for the evidence map if the model
  is linear in the pixels (the softmax regression)."""

  def __init__(self, version: int, path, loaded, kernel=None, bias=None, model_name=None):
    self.version = version
    self.model_name = model_name  # from the export's record (kmnist.export.record), None if unknown
    self.path = Path(path)
    self._loaded = loaded  # keeps the variables the signatures read alive
    self.signatures = read_signatures(loaded)
    self.about = {"model": model_name}  # the export's record (kmnist.export.record)
    self.saved_model_pb = b""  # saved_model.pb, as loaded
    self.kernel = kernel  # [784, 10] float32, or None
    self.bias = bias
    if SERVING_SIGNATURE not in self.signatures:
      raise KmnistError(
        f"{path} has no one-input '{SERVING_SIGNATURE}' signature (it has "
        f"{sorted(loaded.signatures)}); serve a SavedModel written by kmnist-train"
      )

  @classmethod
  def load(cls, path, version: int) -> "Servable":
    """Loads `path`; KmnistError if it is not a kmnist SavedModel."""
    try:
      loaded = tf.saved_model.load(str(path))
    except Exception as e:  # Whatever TF raises on a damaged export: name the version, don't crash.
      raise KmnistError(f"{path} could not be loaded as a SavedModel ({one_line(e)})") from None
    variables = {v.name: v.numpy() for v in getattr(loaded, "variables", [])}
    try:
      about = record.describe(path, variables, log=logger.info)
      kernel, bias = record.pixel_weights(about, variables)
    except KmnistError as e:  # not one of kmnist's: served, without a name or an evidence map
      logger.info("%s", e)
      about, kernel, bias = {"model": None}, None, None
    if about.get("picture") != "digit_maps":  # the evidence map: weights x pixels, linear models
      kernel, bias = None, None
    servable = cls(version, path, loaded, kernel, bias, about["model"])
    servable.about = about
    # Read now: a version keeps answering its metadata after its files are removed from disk.
    servable.saved_model_pb = (Path(path) / "saved_model.pb").read_bytes()
    return servable

  @property
  def tflite_dir(self) -> Path:
    """This version's own TFLite files (the phone's), where its export's record says."""
    return record.tflite_dir(self.path, self.about)

  def signature(self, name: str | None) -> Signature:
    name = name or SERVING_SIGNATURE
    if name not in self.signatures:
      raise BadRequest(
        f"signature_name '{name}' is not a signature of this model; it has "
        f"{', '.join(repr(s) for s in sorted(self.signatures))}"
      )
    return self.signatures[name]

  def signature_for_input(self, input_name: str) -> Signature:
    """The signature whose input has this name (Open Inference requests name the tensor)."""
    for signature in self.signatures.values():
      if signature.input_name == input_name:
        return signature
    names = ", ".join(f"'{s.input_name}' ({s.name})" for s in self.signatures.values())
    raise BadRequest(f"input '{input_name}' is not an input of this model; it takes {names}")

  def run(self, signature: Signature, array: np.ndarray) -> dict[str, np.ndarray]:
    """Calls the signature on a checked array; returns its outputs as numpy arrays, by name."""
    outputs = signature.function(**{signature.input_name: tf.constant(array)})
    return {name: tensor.numpy() for name, tensor in outputs.items()}

  def evidence(self, pixels: np.ndarray, class_ids: np.ndarray) -> np.ndarray | None:
    """The tutorial's evidence for each image's class: weight x pixel in [0, 1], [N, 784].

    Summed, plus the class's bias, it is the class's logit. None unless this is the softmax model.
    """
    if self.kernel is None:
      return None
    x = pixels.reshape(len(pixels), -1).astype(np.float32)
    if pixels.dtype == np.uint8:
      x = x / np.float32(255)
    return x * self.kernel[:, class_ids].T
