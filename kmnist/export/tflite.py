"""TFLite models for phones, converted from Keras-exported SavedModels, run with LiteRT.

Three variants, each with the SavedModel's signature (`serving_default`: uint8 `image`
[N, 28, 28], raw pixels -> `class_id`, `probabilities`, `logits`):
  float    float32 weights and arithmetic, converted from the served SavedModel;
  dynamic  int8 weights, float activations quantized on the fly (`Optimize.DEFAULT`), from the
           served SavedModel;
  int8     integer-only arithmetic, calibrated on the training images; int8 `probabilities` and
           `logits`.

The int8 model is converted from a second SavedModel of the same Keras model whose `image` is
float32 in [0, 1]: the converter then makes that input uint8 with scale 1/255 and zero point 0, so
the phone feeds the same raw pixels as to the other variants and the scaling costs nothing.
(Converting the uint8-input SavedModel instead keeps a float CAST and a requantizing MUL in the
model.)

Only Keras-exported SavedModels are converted: `from_concrete_functions` on a Keras 3 model (or a
hand-made tf.Module around it) converts "successfully" into garbage, so every model is scored before
it is kept.
"""

import tempfile
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from tensorflow.lite.tools import flatbuffer_utils

from kmnist.data.spec import IMAGE_SHAPE
from kmnist.export.formats import RAW_VARIANTS as VARIANTS
from kmnist.export.signatures import SERVING_SIGNATURE, outputs_from_logits

# The int8 model's `image`: real value = INPUT_SCALE * (pixel - INPUT_ZERO_POINT), i.e. pixel / 255.
INPUT_SCALE, INPUT_ZERO_POINT = 1 / 255, 0
CALIBRATION_BATCH = 1000
CALIBRATION_EXTREMES, CALIBRATION_SAMPLE = 10, 500


def convert(variant: str, saved_model_dir, model: keras.Model, train_images: np.ndarray) -> bytes:
  """The `.tflite` flatbuffer of one variant.

  `saved_model_dir` is the served SavedModel (float, dynamic); `model` and `train_images` (uint8,
  from the training split, never the test set: calibration_images) are what the int8 variant is
  exported from and calibrated on.
  """
  if variant not in VARIANTS:
    raise ValueError(f"unknown TFLite variant {variant!r}; expected one of {VARIANTS}")
  if variant == "int8":
    return convert_int8(model, train_images)
  converter = tf.lite.TFLiteConverter.from_saved_model(
    str(saved_model_dir), signature_keys=[SERVING_SIGNATURE]
  )
  if variant == "dynamic":
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  return run_converter(converter)


def convert_int8(model: keras.Model, train_images: np.ndarray) -> bytes:
  """Full-integer model: uint8 pixels in (scale 1/255, zero point 0), int8 outputs."""
  with tempfile.TemporaryDirectory(prefix="kmnist_int8_source_") as source_dir:
    unit_range_archive(model).write_out(source_dir, verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(
      source_dir, signature_keys=[SERVING_SIGNATURE]
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: calibration_batches(train_images)
    # Fail the conversion rather than fall back to float for an op with no int8 kernel.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8  # what a camera pipeline has
    converter.inference_output_type = tf.int8
    model_bytes = run_converter(converter)
  check_quantization(model_bytes, "the int8 model", {"image": (INPUT_SCALE, INPUT_ZERO_POINT)})
  return model_bytes


def check_quantization(model_bytes: bytes, what: str, expected: dict) -> None:
  """Each tensor {name: (scale, zero point)} of the signature is quantized as expected (so the
  model takes raw pixels, and gives what its readers dequantize), or RuntimeError."""
  runner = interpreter(model_bytes).get_signature_runner(SERVING_SIGNATURE)
  details = {**runner.get_input_details(), **runner.get_output_details()}
  for name, (want_scale, want_zero_point) in expected.items():
    scale, zero_point = details[name]["quantization"]
    if not (np.isclose(scale, want_scale, rtol=1e-6) and zero_point == want_zero_point):
      raise RuntimeError(
        f"{what}'s {name} quantization is (scale {scale}, zero point {zero_point}), not "
        f"(1/{round(1 / want_scale)}, {want_zero_point})"
      )


def unit_range_archive(model: keras.Model) -> keras.export.ExportArchive:
  """`serving_default` on float32 pixels in [0, 1]: the source of the int8 model."""
  archive = keras.export.ExportArchive()
  archive.track(model)

  @tf.function(
    input_signature=[tf.TensorSpec((None,) + IMAGE_SHAPE, tf.float32, name="image")],
    autograph=False,
  )
  def serve_unit_range(image):
    # Pins the input's quantization to 256 steps over [0, 1] (scale 1/255, zero point 0), whatever
    # range the calibration images happen to cover; for pixels / 255 it is the identity.
    image = tf.quantization.fake_quant_with_min_max_args(image, min=0.0, max=1.0, num_bits=8)
    return outputs_from_logits(model(image, training=False))

  archive.add_endpoint(SERVING_SIGNATURE, serve_unit_range)
  return archive


def calibration_images(train_images: np.ndarray, train_logits: np.ndarray) -> np.ndarray:
  """The training images every int8 file is calibrated on (the raw file and the bundle alike).

  The int8 logits' range is the range calibration sees, so a sample of the training split clips
  the test logits (2,000 evenly spaced images: 9 to 12 of them, by up to 3.2). The images at both
  ends of every logit (CALIBRATION_EXTREMES of each) give the range that all 55,000 give, and an
  evenly spaced CALIBRATION_SAMPLE the inner layers' spread: the same int8 logits as calibrating
  on the whole split, at a twentieth of the cost (BUILD_NOTES.md, "Export").
  """
  chosen = set(range(0, len(train_images), max(1, len(train_images) // CALIBRATION_SAMPLE)))
  order = np.argsort(train_logits, axis=0, kind="stable")
  chosen.update(order[:CALIBRATION_EXTREMES].ravel().tolist())
  chosen.update(order[-CALIBRATION_EXTREMES:].ravel().tolist())
  return train_images[sorted(chosen)]


def calibration_batches(images: np.ndarray):
  """Calibration images scaled to [0, 1], CALIBRATION_BATCH at a time."""
  for start in range(0, len(images), CALIBRATION_BATCH):
    yield {"image": images[start : start + CALIBRATION_BATCH].astype(np.float32) / 255.0}


def run_converter(converter, signature_names: bool = False) -> bytes:
  """The converter's flatbuffer, without conversion metadata and inner tensor names; with
  `signature_names`, the input and output tensors named as in the signature."""
  # The conversion metadata (converter options, TF version) costs ~150 bytes per file, which the
  # int8 size budget needs; the same facts are in tflite_report.json beside the models.
  converter.exclude_conversion_metadata = True
  with warnings.catch_warnings():
    # Calibration runs TensorFlow's own deprecated tf.lite.Interpreter; the warning is not ours to
    # act on.
    warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
    return strip_intermediate_names(converter.convert(), signature_names)


def strip_intermediate_names(model_bytes: bytes, signature_names: bool = False) -> bytes:
  """Drops the names of the tensors inside the graph (~500 bytes of Keras layer paths per file).

  The signature and its input and output names stay, and nothing computed changes. TFLite's own
  `strip_strings` would also drop the signature, which apps use. With `signature_names` the input
  and output tensors take the signature's names (`image`, `probabilities`) instead of the
  converter's (`serving_default_image:0`, `StatefulPartitionedCall:0`), for runtimes that read
  tensors without the signature.
  """
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
  named = {
    io.tensorIndex: io.name
    for signature in model.signatureDefs or []
    for io in [*signature.inputs, *signature.outputs]
  }
  for subgraph in model.subgraphs:
    for index, tensor in enumerate(subgraph.tensors):
      if index not in named:
        tensor.name = None
      elif signature_names:
        tensor.name = named[index]
  return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def interpreter(model, num_threads: int | None = None) -> Interpreter:
  """LiteRT's interpreter for a `.tflite` given as a path or as bytes."""
  if isinstance(model, (str, Path)):
    return Interpreter(model_path=str(model), num_threads=num_threads)
  return Interpreter(model_content=model, num_threads=num_threads)


def input_details(model) -> dict:
  """dtype, shape and (scale, zero point) of the `image` input of a `.tflite` (a path or bytes)."""
  return interpreter(model).get_signature_runner(SERVING_SIGNATURE).get_input_details()["image"]


def output_details(model) -> dict:
  return interpreter(model).get_signature_runner(SERVING_SIGNATURE).get_output_details()


def predict_tflite(model, images_uint8: np.ndarray) -> dict:
  """Runs the `.tflite` (a path or bytes) through its `serving_default` runner on uint8 pixels.

  Quantized outputs (the int8 variant's logits and probabilities) come back dequantized.
  """
  runner = interpreter(model).get_signature_runner(SERVING_SIGNATURE)
  outputs = runner(image=np.asarray(images_uint8, np.uint8))
  return {
    name: dequantize(outputs[name], details)
    for name, details in runner.get_output_details().items()
  }


def dequantize(values: np.ndarray, details: dict) -> np.ndarray:
  """real = scale * (q - zero_point) for a quantized tensor; other tensors unchanged (copied)."""
  scale, zero_point = details["quantization"]
  if not scale:
    return np.array(values)
  return (scale * (values.astype(np.float32) - zero_point)).astype(np.float32)


def invoke_latency_us(model, image_uint8: np.ndarray, invokes: int = 1000) -> float:
  """Median wall time of `interpreter.invoke()` on one image, in microseconds, on one thread."""
  return median_invoke_us(model, np.asarray(image_uint8, np.uint8)[None], invokes)


def median_invoke_us(model, image: np.ndarray, invokes: int = 1000) -> float:
  """Median wall time of `interpreter.invoke()` with `image` as the signature's input, in µs.

  The input is set once, so this is the model's own time per image, not Python's call overhead (a
  few µs more through the signature runner). One thread: a 7,850-parameter model gains nothing from
  more.
  """
  timed = interpreter(model, num_threads=1)
  # Sizes the tensors for one image and sets it; the runner is dropped at once, as invoke() refuses
  # to run while another object holds the interpreter's internals.
  timed.get_signature_runner(SERVING_SIGNATURE)(image=image)
  timed.invoke()  # warm-up
  times = []
  for _ in range(invokes):
    start = time.perf_counter()
    timed.invoke()
    times.append(time.perf_counter() - start)
  return float(np.median(times) * 1e6)
