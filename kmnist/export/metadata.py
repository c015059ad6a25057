"""TFLite metadata for the image-classifier bundles, written with the schema's own classes.

This does what MediaPipe's MetadataPopulator does (mediapipe/tasks/python/metadata/metadata.py),
without mediapipe: its 1.x wheel lacks the C++ helper the populator imports, and 0.10.21, which has
it, pins protobuf<5 and numpy<2 (BUILD_NOTES.md, the upgrade checklist):

  1. the ModelMetadata table is built from `metadata_schema_py_generated` objects (the classes flatc
     generates from metadata_schema.fbs, vendored) and packed by flatbuffers under the file
     identifier "M001", with `min_parser_version` set by metadata_version.cc's rules;
  2. the model is read with TensorFlow's own `schema_py_generated`; the packed metadata goes into a
     new buffer that a "TFLITE_METADATA" entry names, and the model is packed again under "TFL3";
  3. the associated files (labels.txt) are appended as a zip archive after the flatbuffer, stored
     uncompressed as the populator stores them. The flatbuffer still loads: its root offset is at
     its start, and the zip lies past its end.
"""

import io
import zipfile

import flatbuffers
import numpy as np
from tensorflow.lite.python import schema_py_generated as schema

from kmnist.export.formats import LABELS_FILENAME
from kmnist.third_party.tflite_metadata import metadata_schema_py_generated as md

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER, MODEL_IDENTIFIER = b"M001", b"TFL3"
# metadata_version.cc: every member used here is in schema 1.0.0 but AssociatedFile.version
# (1.4.1).
BASE_PARSER_VERSION, FILE_VERSION_PARSER = "1.0.0", "1.4.1"
# Zip's earliest date: writestr(name) would stamp the current time, and the bundle would differ from
# run to run (MetadataPopulator's output does).
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
AUTHOR = "kmnist"
LICENSE = (
  "Apache-2.0 (kmnist). Trained on the MNIST database of handwritten digits by Yann LeCun, Corinna "
  "Cortes and Christopher J.C. Burges, CC BY-SA 3.0."
)


def labels_file(num_classes: int) -> bytes:
  """labels.txt: line i is the name of class i, the digit itself."""
  return "".join(f"{label}\n" for label in range(num_classes)).encode()


def classifier_metadata(
  *, name: str, description: str, version: str, quantized: bool, num_classes: int
) -> md.ModelMetadataT:
  """A bundle's metadata: an RGB picture in (normalization and value range), probabilities out."""
  image = md.TensorMetadataT()
  image.name = "image"
  image.description = (
    "RGB picture of one digit, 28x28, white on black as MNIST's; the model takes its gray inside"
  )
  image.content = _content(md.ContentProperties.ImageProperties, md.ImagePropertiesT())
  image.content.contentProperties.colorSpace = md.ColorSpaceType.RGB
  image.content.contentProperties.defaultSize = md.ImageSizeT()
  image.content.contentProperties.defaultSize.width = 28
  image.content.contentProperties.defaultSize.height = 28
  # value = (pixel - mean) / std = pixel / 255: what the float bundle takes, and the real value the
  # int8 bundle's uint8 input encodes (scale 1/255, zero point 0). MediaPipe applies it to float
  # inputs, passes pixels to uint8 inputs as they are, and refuses a float model without it.
  normalization = md.ProcessUnitT()
  normalization.optionsType = md.ProcessUnitOptions.NormalizationOptions
  normalization.options = md.NormalizationOptionsT()
  normalization.options.mean, normalization.options.std = [0.0], [255.0]
  image.processUnits = [normalization]
  image.stats = _stats(255.0 if quantized else 1.0)  # the tensor's own values

  probabilities = md.TensorMetadataT()
  # MediaPipe names the classification head after it, and reads it without a null check.
  probabilities.name = "probabilities"
  probabilities.description = f"Probability of each of the {num_classes} digits (softmax)"
  probabilities.content = _content(md.ContentProperties.FeatureProperties, md.FeaturePropertiesT())
  probabilities.stats = _stats(255.0 if quantized else 1.0)
  labels = md.AssociatedFileT()
  labels.name = LABELS_FILENAME
  labels.description = "Line i is the name of class i: the digits 0-9."
  labels.type = md.AssociatedFileType.TENSOR_AXIS_LABELS
  probabilities.associatedFiles = [labels]

  subgraph = md.SubGraphMetadataT()
  subgraph.inputTensorMetadata, subgraph.outputTensorMetadata = [image], [probabilities]
  metadata = md.ModelMetadataT()
  metadata.name, metadata.description, metadata.version = name, description, version
  metadata.author, metadata.license = AUTHOR, LICENSE
  metadata.subgraphMetadata = [subgraph]
  return metadata


def _content(kind: int, properties) -> md.ContentT:
  content = md.ContentT()
  content.contentPropertiesType, content.contentProperties = kind, properties
  return content


def _stats(maximum: float) -> md.StatsT:
  stats = md.StatsT()
  stats.min, stats.max = [0.0], [maximum]
  return stats


def min_parser_version(metadata: md.ModelMetadataT) -> str:
  """The oldest metadata parser that reads every member used (metadata_version.cc's rules, for the
  members this writer uses; any other is refused rather than guessed)."""
  version = BASE_PARSER_VERSION
  for subgraph in metadata.subgraphMetadata or []:
    later = ("inputProcessUnits", "outputProcessUnits", "inputTensorGroups", "outputTensorGroups")
    if any(getattr(subgraph, member) for member in (*later, "customMetadata")):
      raise ValueError("min_parser_version: subgraph members after schema 1.0.0 are not handled")
    files = list(metadata.associatedFiles or []) + list(subgraph.associatedFiles or [])
    for tensor in (subgraph.inputTensorMetadata or []) + (subgraph.outputTensorMetadata or []):
      files += tensor.associatedFiles or []
      for unit in tensor.processUnits or []:
        if unit.optionsType != md.ProcessUnitOptions.NormalizationOptions:
          raise ValueError(f"min_parser_version: process unit {unit.optionsType} not handled")
      if tensor.content and tensor.content.contentPropertiesType not in (
        md.ContentProperties.ImageProperties,
        md.ContentProperties.FeatureProperties,
      ):
        raise ValueError("min_parser_version: only image and feature properties are handled")
    for file in files:
      if file.type not in (md.AssociatedFileType.TENSOR_AXIS_LABELS,):
        raise ValueError(f"min_parser_version: associated file type {file.type} not handled")
      if file.version is not None:
        version = FILE_VERSION_PARSER
  return version


def pack(metadata: md.ModelMetadataT) -> bytes:
  """The metadata flatbuffer, `min_parser_version` filled in."""
  metadata.minParserVersion = min_parser_version(metadata)
  builder = flatbuffers.Builder(0)
  builder.Finish(metadata.Pack(builder), METADATA_IDENTIFIER)
  return bytes(builder.Output())


def populate(model_bytes: bytes, metadata: md.ModelMetadataT, files: dict[str, bytes]) -> bytes:
  """`model_bytes` with `metadata` in its TFLITE_METADATA buffer (replaced if there is one, as the
  populator does) and `files` zipped after it. Every file the metadata names must be given, and
  only those."""
  named = {
    _text(file.name)
    for subgraph in metadata.subgraphMetadata
    for tensor in (subgraph.inputTensorMetadata or []) + (subgraph.outputTensorMetadata or [])
    for file in tensor.associatedFiles or []
  }
  if named != set(files):
    raise ValueError(f"the metadata names the files {sorted(named)}, given {sorted(files)}")
  if not schema.Model.ModelBufferHasIdentifier(model_bytes, 0):
    raise ValueError("not a TFLite model (no TFL3 identifier)")
  model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_bytes, 0))
  if len(model.subgraphs) != 1:
    raise ValueError(f"an image classifier has one subgraph, this model {len(model.subgraphs)}")
  buffer = schema.BufferT()
  buffer.data = np.frombuffer(pack(metadata), np.uint8)
  model.buffers, model.metadata = model.buffers or [], model.metadata or []
  existing = [entry for entry in model.metadata if _text(entry.name) == METADATA_NAME]
  if existing:
    model.buffers[existing[0].buffer] = buffer
  else:
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
    model.metadata.append(entry)
  builder = flatbuffers.Builder(0)
  builder.Finish(model.Pack(builder), MODEL_IDENTIFIER)
  out = io.BytesIO(bytes(builder.Output()))
  out.seek(0, io.SEEK_END)
  with zipfile.ZipFile(out, "a") as archive:  # on bytes that are not a zip: one appended at the end
    for name, content in files.items():
      archive.writestr(zipfile.ZipInfo(name, date_time=ZIP_DATE), content)
  return out.getvalue()


def read(model_bytes: bytes) -> tuple[md.ModelMetadataT, dict[str, bytes]]:
  """(the metadata, the associated files) of a bundle; ValueError if it has none."""
  model = schema.Model.GetRootAsModel(model_bytes, 0)
  for i in range(model.MetadataLength()):
    if _text(model.Metadata(i).Name()) == METADATA_NAME:
      data = model.Buffers(model.Metadata(i).Buffer()).DataAsNumpy().tobytes()
      if not md.ModelMetadata.ModelMetadataBufferHasIdentifier(data, 0):
        raise ValueError(f"its {METADATA_NAME} buffer is not TFLite metadata (no M001 identifier)")
      metadata = md.ModelMetadataT.InitFromObj(md.ModelMetadata.GetRootAsModelMetadata(data, 0))
      with zipfile.ZipFile(io.BytesIO(model_bytes)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
      return metadata, files
  raise ValueError(f"it has no {METADATA_NAME}: not an image-classifier bundle")


def _text(value) -> str | None:
  return value.decode() if isinstance(value, bytes) else value
