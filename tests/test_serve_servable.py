"""kmnist.serve.repository.servable: one version's signatures, the input checks, the evidence
map."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kmnist.export import saved_model
from kmnist.serve.repository import servable as servable_lib
from kmnist.serve.repository.servable import BadRequest, check_array
from kmnist.util.errors import KmnistError


@pytest.fixture(scope="module")
def servable(tmp_path_factory, trained_model):
  version_dir = saved_model.export_saved_model(trained_model, tmp_path_factory.mktemp("sv") / "b")
  return servable_lib.Servable.load(version_dir, 1)


def test_signatures_as_the_contract_declares_them(servable):
  default, flat = servable.signatures["serving_default"], servable.signatures["serving_float"]
  assert (default.input_name, default.dtype, default.shape) == ("image", np.uint8, (28, 28))
  assert (flat.input_name, flat.dtype, flat.shape) == ("x", np.float32, (784,))
  assert default.outputs == flat.outputs == ("class_id", "logits", "probabilities")
  assert servable.signature(None) is default and servable.signature_for_input("x") is flat
  with pytest.raises(
    BadRequest,
    match="'nope' is not a signature of this model; it has 'serving_default', 'serving_float'",
  ):
    servable.signature("nope")
  with pytest.raises(BadRequest, match="'pixels' is not an input of this model; it takes 'image'"):
    servable.signature_for_input("pixels")


def test_run_is_the_keras_model(servable, trained_model, synthetic_datasets):
  images = synthetic_datasets.test.images[:50]
  expected = trained_model.predict(images / 255.0, verbose=0)
  default = servable.run(servable.signature(None), images)
  flat = servable.run(
    servable.signature("serving_float"), images.reshape(50, -1).astype(np.float32) / 255
  )
  for outputs in (default, flat):
    np.testing.assert_array_equal(outputs["class_id"], expected.argmax(-1))
    np.testing.assert_allclose(outputs["logits"], expected, atol=1e-4)


def test_evidence_sums_with_the_bias_to_the_logit(servable, synthetic_datasets):
  images = synthetic_datasets.test.images[:20]
  outputs = servable.run(servable.signature(None), images)
  evidence = servable.evidence(images, outputs["class_id"])
  assert evidence.shape == (20, 784)
  logits = outputs["logits"][np.arange(20), outputs["class_id"]]
  np.testing.assert_allclose(
    evidence.sum(1) + servable.bias[outputs["class_id"]], logits, atol=1e-4
  )


@pytest.mark.parametrize(
  "value, message",
  [
    ([[[0] * 28] * 27], r"has shape \[1, 27, 28\], expected \[N, 28, 28\]"),
    ([[0] * 28] * 28, r"has shape \[28, 28\], expected \[N, 28, 28\]"),
    ([[[0] * 28] * 28, [[0] * 28] * 27], "is not a rectangular array of numbers"),
    (np.zeros((0, 28, 28)), "holds no examples"),
    (np.zeros((3, 28, 28), np.int64), "batch of 3 examples is over this server's limit of 2"),
    (np.full((1, 28, 28), 0.5), "must hold integers 0-255 .* got non-integer numbers"),
    (np.full((1, 28, 28), True), "got booleans"),
    (np.full((1, 28, 28), "7"), "got strings"),
    ([[[10**30] * 28] * 28], "got mixed or oversized values"),
    (
      np.pad(np.full((1, 1, 1), 256), ((0, 0), (3, 24), (4, 23))),
      r"pixel value out of range \(256 at \[0, 3, 4\]\); uint8 pixels must be 0-255",
    ),
    (np.full((1, 28, 28), -1), r"out of range \(-1 at \[0, 0, 0\]\)"),
  ],
)
def test_check_array_refuses_with_one_reason(servable, value, message):
  with pytest.raises(BadRequest, match=message):
    check_array(servable.signature(None), value, max_batch_size=2, where="input")


@pytest.mark.parametrize(
  "value, message",
  [
    (
      np.full((1, 784), 1.5),
      r"out of range \(1.5 at \[0, 0\]\); float pixels must be in \[0, 1\]",
    ),
    (np.full((1, 784), np.nan), "not a finite number"),
    (np.full((1, 784), "a"), "must hold numbers"),
  ],
)
def test_check_array_float_pixels(servable, value, message):
  with pytest.raises(BadRequest, match=message):
    check_array(servable.signature("serving_float"), value, max_batch_size=10)


@settings(max_examples=40, deadline=None)
@given(
  hnp.arrays(
    np.int64,
    st.tuples(st.integers(1, 4), st.just(28), st.just(28)),
    elements=st.integers(-300, 600),
  )
)
def test_check_array_accepts_exactly_the_uint8_range(servable, array):
  signature = servable.signature(None)
  if array.min() >= 0 and array.max() <= 255:
    checked = check_array(signature, array.tolist(), max_batch_size=4)
    assert checked.dtype == np.uint8
    np.testing.assert_array_equal(checked, array)
  else:
    with pytest.raises(BadRequest, match="out of range"):
      check_array(signature, array.tolist(), max_batch_size=4)


def test_load_refuses_what_is_not_a_kmnist_saved_model(tmp_path):
  import tensorflow as tf

  (tmp_path / "garbage").mkdir()
  (tmp_path / "garbage" / "saved_model.pb").write_bytes(b"not a protobuf")
  with pytest.raises(KmnistError, match="could not be loaded as a SavedModel"):
    servable_lib.Servable.load(tmp_path / "garbage", 1)
  module = tf.Module()
  module.f = tf.function(lambda a, b: {"s": a + b}, input_signature=[tf.TensorSpec([None])] * 2)
  tf.saved_model.save(
    module, str(tmp_path / "two_inputs"), signatures={"serving_default": module.f}
  )
  with pytest.raises(KmnistError, match="has no one-input 'serving_default' signature"):
    servable_lib.Servable.load(tmp_path / "two_inputs", 1)


def test_other_models_are_served_without_the_evidence_map(
  tmp_path, trained_models, synthetic_datasets
):
  for name, model in trained_models.items():
    export = saved_model.export_saved_model(model, tmp_path / name)
    servable = servable_lib.Servable.load(export, 1)
    assert (servable.model_name, servable.kernel, servable.bias) == (name, None, None)
    digits = synthetic_datasets.test.images[:4]
    outputs = servable.run(servable.signature(None), digits)
    assert servable.evidence(digits, outputs["class_id"]) is None
