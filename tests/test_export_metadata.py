"""The bundles' TFLite metadata, read back with the schema's own classes: what it says, the labels
inside, reproducible bytes, and bad input refused in one line."""

import numpy as np
import pytest

from kmnist import __version__
from kmnist.export import metadata, tflite
from kmnist.third_party.tflite_metadata import metadata_schema_py_generated as md


def test_the_metadata_says_what_the_bundle_is(classifier_bundles):
  for variant, model_bytes in classifier_bundles.items():
    described, files = metadata.read(model_bytes)
    assert described.name.decode() == f"kmnist softmax digit classifier ({variant.split('_')[0]})"
    assert b"the tutorial's softmax regression" in described.description
    assert described.version.decode() == f"kmnist {__version__}, export 1"
    assert described.author == b"kmnist" and b"Apache-2.0" in described.license
    assert b"CC BY-SA 3.0" in described.license and described.minParserVersion == b"1.0.0"
    ((image,), (probabilities,)) = (
      described.subgraphMetadata[0].inputTensorMetadata,
      described.subgraphMetadata[0].outputTensorMetadata,
    )
    assert image.name == b"image" and image.content.contentProperties.colorSpace == 1  # RGB
    (normalization,) = image.processUnits
    assert (list(normalization.options.mean), list(normalization.options.std)) == ([0.0], [255.0])
    top = 255.0 if variant == "int8_classifier" else 1.0
    assert (list(image.stats.min), list(image.stats.max)) == ([0.0], [top])
    (labels,) = probabilities.associatedFiles
    assert labels.name == b"labels.txt" and labels.type == md.AssociatedFileType.TENSOR_AXIS_LABELS
    assert files == {"labels.txt": b"0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n"}


def test_populating_again_replaces_the_metadata_and_is_reproducible(classifier_bundles):
  model_bytes = classifier_bundles["int8_classifier"]
  described, files = metadata.read(model_bytes)
  described.version = "kmnist 0.1.0, export 2"
  again = metadata.populate(model_bytes[: model_bytes.rindex(b"PK\x03\x04")], described, files)
  assert again == metadata.populate(model_bytes, described, files)  # no second zip, no stamp
  assert metadata.read(again)[0].version == b"kmnist 0.1.0, export 2"
  model = tflite.interpreter(again)  # the flatbuffer still loads, the zip lies past its end
  assert len(model.get_signature_list()) == 1
  digit = np.zeros((1, 28, 28, 3), np.uint8)
  runner = model.get_signature_runner()
  assert runner(image=digit)["probabilities"].shape == (1, 10)


def test_bad_input_to_the_writer_is_refused_in_one_line(classifier_bundles):
  model_bytes = classifier_bundles["float_classifier"]
  described, files = metadata.read(model_bytes)
  cases = [
    (b"not a model at all", files, "not a TFLite model \\(no TFL3 identifier\\)"),
    (model_bytes, {}, "the metadata names the files \\['labels.txt'\\], given \\[\\]"),
  ]
  for model, given, message in cases:
    with pytest.raises(ValueError, match=message):
      metadata.populate(model, described, given)
  with pytest.raises(ValueError, match="has no TFLITE_METADATA: not an image-classifier bundle"):
    metadata.read(metadata.populate(model_bytes, described, files)[:0] + b"\0" * 16)
  unit = md.ProcessUnitT()
  unit.optionsType = md.ProcessUnitOptions.ScoreCalibrationOptions
  described.subgraphMetadata[0].outputTensorMetadata[0].processUnits = [unit]
  with pytest.raises(ValueError, match="min_parser_version: process unit 2 not handled"):
    metadata.pack(described)
