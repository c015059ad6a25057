"""Image-classifier bundles: `.tflite` files MediaPipe Tasks' ImageClassifier runs as they are.

One per variant (float, int8), beside the raw-tensor files, converted from a Keras-exported
SavedModel like them, with TFLite metadata (metadata.py) and labels.txt inside:

  input   `image` [1, 28, 28, 3], RGB as a camera or a canvas gives it: float32 in [0, 1] (float;
          the metadata's normalization, mean 0 and std 255, makes the runtime map 0-255 onto it)
          or uint8 0-255 (int8: scale 1/255, zero point 0);
  output  `probabilities` [1, 10], the only output: float32, or uint8 with scale 1/256 and zero
          point 0 (MediaPipe makes every output a classification head and takes only FLOAT32 and
          UINT8 ones, so the raw files' int64 `class_id` and int8 outputs would be refused).

The gray image the model was trained on is taken inside the graph, as a 1x1 convolution with the
weights (65, 127, 25) / 217: ITU-R 601's luma (what Pillow's convert("L") uses: 0.299, 0.587,
0.114) to within 0.0018, and held exactly by int8 per-channel quantization (the largest weight is
127), so a gray pixel (R = G = B) comes back unchanged in both variants. The batch is 1: LiteRT.js
refuses an input whose batch is dynamic, and a dynamic batch adds shape ops to the graph.
"""

import tempfile

import keras
import numpy as np
import tensorflow as tf

from kmnist import __version__
from kmnist.data.spec import IMAGE_SHAPE, NUM_CLASSES
from kmnist.export import metadata, tflite
from kmnist.export.formats import LABELS_FILENAME
from kmnist.export.signatures import SERVING_SIGNATURE

CHANNELS = 3
LUMA = np.array([65, 127, 25], np.float32) / 217  # sums to 1
# The int8 bundle's tensors: real = scale * (q - zero_point).
INPUT_QUANTIZATION, OUTPUT_QUANTIZATION = (1 / 255, 0), (1 / 256, 0)


def classifier_archive(model: keras.Model, quantized: bool) -> keras.export.ExportArchive:
  """`serving_default`: float32 RGB [1, 28, 28, 3] in [0, 1] -> {"probabilities": [1, 10]}.

  `quantized` pins the ranges of the input and of the gray image to [0, 1] in 256 steps (scale
  1/255, zero point 0), as the raw int8 file's source does, whatever the calibration images cover.
  """
  archive = keras.export.ExportArchive()
  archive.track(model)
  luma = tf.constant(LUMA.reshape(1, 1, CHANNELS, 1))

  def pin(x):
    if not quantized:
      return x
    return tf.quantization.fake_quant_with_min_max_args(x, min=0.0, max=1.0, num_bits=8)

  spec = tf.TensorSpec((1, *IMAGE_SHAPE, CHANNELS), tf.float32, name="image")

  @tf.function(input_signature=[spec], autograph=False)
  def classify(image):
    gray = pin(tf.nn.conv2d(pin(image), luma, strides=1, padding="VALID"))
    logits = model(tf.reshape(gray, (1, *IMAGE_SHAPE)), training=False)
    return {"probabilities": tf.nn.softmax(logits, axis=-1)}

  archive.add_endpoint(SERVING_SIGNATURE, classify)
  return archive


def rgb(images_uint8: np.ndarray) -> np.ndarray:
  """Gray uint8 digits [..., 28, 28] as the RGB pictures an app hands over [..., 28, 28, 3]."""
  return np.repeat(np.asarray(images_uint8, np.uint8)[..., None], CHANNELS, axis=-1)


def convert(variant: str, model: keras.Model, train_images: np.ndarray) -> bytes:
  """The bundle's graph, without metadata; `variant` is "float_classifier" or "int8_classifier".

  The int8 one is calibrated on `train_images` (tflite.calibration_images), one image per call (its
  batch is 1).
  """
  quantized = variant == "int8_classifier"
  with tempfile.TemporaryDirectory(prefix="kmnist_classifier_source_") as source_dir:
    classifier_archive(model, quantized).write_out(source_dir, verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(
      source_dir, signature_keys=[SERVING_SIGNATURE]
    )
    if quantized:
      converter.optimizations = [tf.lite.Optimize.DEFAULT]
      converter.representative_dataset = lambda: (
        {"image": rgb(image[None]).astype(np.float32) / 255.0} for image in train_images
      )
      # Fail the conversion rather than fall back to float for an op with no int8 kernel.
      converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
      converter.inference_input_type = converter.inference_output_type = tf.uint8
    model_bytes = tflite.run_converter(converter, signature_names=True)
  if quantized:
    quantization = {"image": INPUT_QUANTIZATION, "probabilities": OUTPUT_QUANTIZATION}
    tflite.check_quantization(model_bytes, "the int8 bundle", quantization)
  return model_bytes


def with_metadata(model_bytes: bytes, variant: str, about: dict | None, version: int) -> bytes:
  """The bundle: its graph with TFLite metadata and labels.txt. `about` is the export's record
  (kmnist.export.record.make), None for a model it does not describe."""
  quantized = variant == "int8_classifier"
  model_name = about["model"] if about else "kmnist"
  arithmetic = "integer-only int8" if quantized else "float32"
  described = metadata.classifier_metadata(
    name=f"kmnist {model_name} digit classifier ({'int8' if quantized else 'float'})",
    description=(
      "Classifies a 28x28 picture of one handwritten digit, white on black as MNIST's: "
      f"{about['description'] if about else 'a kmnist model'}, {arithmetic} arithmetic. The "
      "picture's gray is taken inside the model."
    ),
    version=f"kmnist {__version__}, export {version}",
    quantized=quantized,
    num_classes=NUM_CLASSES,
  )
  labels = {LABELS_FILENAME: metadata.labels_file(NUM_CLASSES)}
  return metadata.populate(model_bytes, described, labels)


def model_input(model, images_uint8: np.ndarray) -> np.ndarray:
  """Gray digits as the bundle's input: RGB uint8 (int8 bundle) or RGB float32 / 255 (float)."""
  return _as_input(rgb(images_uint8), tflite.input_details(model)["dtype"])


def _as_input(pixels: np.ndarray, dtype) -> np.ndarray:
  return pixels if dtype == np.uint8 else pixels.astype(np.float32) / 255.0


def predict_bundle(model, images_uint8: np.ndarray) -> dict:
  """{"class_id", "probabilities" (dequantized)} of a bundle (a path or bytes) on gray uint8
  digits [N, 28, 28], with LiteRT, one digit per call (the bundle's batch is 1)."""
  interpreter = tflite.interpreter(model)
  interpreter.allocate_tensors()
  (given,), (taken,) = interpreter.get_input_details(), interpreter.get_output_details()
  images = np.asarray(images_uint8, np.uint8)
  probabilities = np.zeros((len(images), NUM_CLASSES), taken["dtype"])
  # The interpreter's own calls, a digit at a time, made into its input as it is needed: the
  # signature runner's checks and a whole [N, 28, 28, 3] copy of the test set cost more than the
  # model (10,000 digits: 0.6 s, now a tenth of that).
  for i in range(len(images)):
    interpreter.set_tensor(given["index"], _as_input(rgb(images[i : i + 1]), given["dtype"]))
    interpreter.invoke()
    probabilities[i] = interpreter.get_tensor(taken["index"])[0]
  probabilities = tflite.dequantize(probabilities, taken)
  return {"class_id": probabilities.argmax(-1), "probabilities": probabilities}


def is_bundle(model) -> bool:
  """Whether a `.tflite` (a path or bytes) takes RGB pictures, as a bundle does."""
  return tuple(tflite.input_details(model)["shape"][-1:]) == (CHANNELS,)
