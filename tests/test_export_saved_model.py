"""The SavedModel as TensorFlow Serving sees it: the signature contract, PredictRequests, warmup
records, atomic versions that count up and are never replaced, and a reader that needs nothing of
kmnist."""

import functools
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.saved_model import loader_impl
from tensorflow_serving.apis import model_pb2, predict_pb2

from kmnist.export import saved_model
from kmnist.models import registry
from kmnist.util import files
from kmnist.util.errors import KmnistError

CONTRACT = {
  "serving_default": ({"image": (tf.uint8, [None, 28, 28])},),
  "serving_float": ({"x": (tf.float32, [None, 784])},),
}
OUTPUTS = {
  "class_id": (tf.int64, [None]),
  "probabilities": (tf.float32, [None, 10]),
  "logits": (tf.float32, [None, 10]),
}


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory, trained_model, synthetic_datasets):
  base = tmp_path_factory.mktemp("serving") / "saved_model"
  return saved_model.export_saved_model(
    trained_model, base, warmup_images=synthetic_datasets.test.images[:5]
  )


def signature_defs(export_dir) -> dict:
  """The SignatureDefs exactly as TF Serving reads them from saved_model.pb."""
  return dict(loader_impl.parse_saved_model(str(export_dir)).meta_graphs[0].signature_def)


@functools.cache
def loaded(export_dir):
  return tf.saved_model.load(str(export_dir))


def serve_like_tf_serving(
  export_dir, request: predict_pb2.PredictRequest
) -> predict_pb2.PredictResponse:
  """Maps a PredictRequest onto the SavedModel the way TF Serving's Predict API does.

  The signature is picked by name (default `serving_default`); every input alias must exist with the
  signature's dtype; tensors are decoded with `tf.make_ndarray`; outputs come back by alias,
  filtered by `output_filter`.
  """
  name = request.model_spec.signature_name or "serving_default"
  signature = signature_defs(export_dir)[name]
  assert set(request.inputs) == set(signature.inputs), (
    "TF Serving rejects missing or unknown input aliases"
  )
  inputs = {}
  for alias, tensor in request.inputs.items():
    assert tensor.dtype == signature.inputs[alias].dtype, (
      f"TF Serving rejects a {alias} of another dtype"
    )
    inputs[alias] = tf.constant(tf.make_ndarray(tensor))
  outputs = loaded(export_dir).signatures[name](**inputs)
  response = predict_pb2.PredictResponse(model_spec=request.model_spec)
  for alias in request.output_filter or signature.outputs:
    response.outputs[alias].CopyFrom(tf.make_tensor_proto(outputs[alias].numpy()))
  return response


def test_signature_contract_in_saved_model_pb(export_dir):
  defs = signature_defs(export_dir)
  assert set(defs) >= set(CONTRACT)
  for name, (inputs,) in CONTRACT.items():
    sig = defs[name]
    assert sig.method_name == "tensorflow/serving/predict"
    for alias, (dtype, shape) in inputs.items():
      assert sig.inputs[alias].dtype == dtype.as_datatype_enum
      assert [d.size for d in sig.inputs[alias].tensor_shape.dim] == [
        -1 if s is None else s for s in shape
      ]
    assert set(sig.outputs) == set(OUTPUTS)
    for alias, (dtype, shape) in OUTPUTS.items():
      assert sig.outputs[alias].dtype == dtype.as_datatype_enum
      assert [d.size for d in sig.outputs[alias].tensor_shape.dim] == [
        -1 if s is None else s for s in shape
      ]


@pytest.mark.slow  # TensorFlow's own command; the contract itself is read in process above
def test_saved_model_cli_lists_the_contract(export_dir):
  cli = Path(sys.executable).parent / "saved_model_cli"
  result = subprocess.run(
    [str(cli), "show", "--all", "--dir", str(export_dir)],
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert result.returncode == 0, result.stderr[-2000:]
  for text in (
    "signature_def['serving_default']",
    "signature_def['serving_float']",
    "inputs['image']",
    "dtype: DT_UINT8",
    "inputs['x']",
    "outputs['class_id']",
    "dtype: DT_INT64",
    "outputs['probabilities']",
    "outputs['logits']",
    "shape: (-1, 28, 28)",
    "shape: (-1, 784)",
  ):
    assert text in result.stdout


def test_predict_request_round_trip(export_dir, trained_model, synthetic_datasets):
  images = synthetic_datasets.test.images[:7]
  request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="kmnist"))
  request.inputs["image"].CopyFrom(tf.make_tensor_proto(images))
  response = serve_like_tf_serving(export_dir, request)
  reference = trained_model.predict(images / 255.0, verbose=0)
  class_id = tf.make_ndarray(response.outputs["class_id"])
  assert class_id.dtype == np.int64 and class_id.shape == (7,)
  np.testing.assert_array_equal(class_id, reference.argmax(-1))
  np.testing.assert_allclose(tf.make_ndarray(response.outputs["logits"]), reference, atol=1e-4)
  np.testing.assert_allclose(
    tf.make_ndarray(response.outputs["probabilities"]).sum(-1), 1, atol=1e-5
  )


def test_float_signature_and_output_filter(export_dir, trained_model, synthetic_datasets):
  images = synthetic_datasets.test.images[:4]
  request = predict_pb2.PredictRequest(
    model_spec=model_pb2.ModelSpec(name="kmnist", signature_name="serving_float"),
    output_filter=["class_id"],
  )
  request.inputs["x"].CopyFrom(
    tf.make_tensor_proto(images.reshape(4, -1).astype(np.float32) / 255.0)
  )
  response = serve_like_tf_serving(export_dir, request)
  assert list(response.outputs) == ["class_id"]
  reference = trained_model.predict(images / 255.0, verbose=0).argmax(-1)
  np.testing.assert_array_equal(tf.make_ndarray(response.outputs["class_id"]), reference)


def test_warmup_records_replay_against_the_signatures(
  export_dir, trained_model, synthetic_datasets
):
  logs = saved_model.read_warmup_requests(export_dir)
  requests = [log.predict_log.request for log in logs]
  # One request per warmup digit (5 here), one batch of them all, and the batch again on
  # serving_float.
  assert [
    (
      r.model_spec.name,
      r.model_spec.signature_name,
      r.inputs[next(iter(r.inputs))].tensor_shape.dim[0].size,
    )
    for r in requests
  ] == [("kmnist", "serving_default", 1)] * 5 + [
    ("kmnist", "serving_default", 5),
    ("kmnist", "serving_float", 5),
  ]
  for log in logs:
    request = log.predict_log.request
    response = serve_like_tf_serving(export_dir, request)
    x = tf.make_ndarray(next(iter(request.inputs.values())))
    pixels = x.reshape(-1, 28, 28) / (255.0 if x.dtype == np.uint8 else 1.0)
    np.testing.assert_array_equal(
      tf.make_ndarray(response.outputs["class_id"]),
      trained_model.predict(pixels, verbose=0).argmax(-1),
    )


def test_a_process_without_kmnist_gets_the_keras_classes(
  export_dir, trained_model, synthetic_datasets, tmp_path
):
  images = synthetic_datasets.test.images
  np.save(tmp_path / "images.npy", images)
  np.save(tmp_path / "expected.npy", trained_model.predict(images / 255.0, verbose=0).argmax(-1))
  script = textwrap.dedent(f"""
      import sys, numpy as np, tensorflow as tf
      serve = tf.saved_model.load({str(export_dir)!r}).signatures["serving_default"]
      out = serve(image=tf.constant(np.load({str(tmp_path / "images.npy")!r})))
      assert set(out) == {{"class_id", "probabilities", "logits"}}, out.keys()
      assert out["class_id"].dtype == tf.int64 and out["probabilities"].shape[1:] == (10,)
      assert (out["class_id"].numpy() == np.load({str(tmp_path / "expected.npy")!r})).all()
      assert "kmnist" not in sys.modules
      print("OK", len(out["class_id"]))
      """)
  result = subprocess.run(
    [sys.executable, "-c", script],
    capture_output=True,
    text=True,
    timeout=120,
    cwd=tmp_path,
    env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
  )
  assert result.returncode == 0, result.stderr[-2000:]
  assert f"OK {len(images)}" in result.stdout


KILLED_EXPORT = textwrap.dedent("""
    import sys, time
    import numpy as np
    from kmnist.util import files
    from kmnist.models import registry
    from kmnist.export import saved_model
    base = sys.argv[1]
    original = files.atomic_directory.__wrapped__

    def slow_rename(final_path):
      # Everything is written, then the process "hangs" before the rename, to be killed there.
      gen = original(final_path)
      tmp = next(gen)
      yield tmp
      print("WRITTEN", flush=True)
      time.sleep(120)
      next(gen, None)

    files.atomic_directory = __import__("contextlib").contextmanager(slow_rename)
    saved_model.export_saved_model(registry.build(), base)
    """)


def test_killed_export_leaves_no_version(tmp_path):
  base = tmp_path / "saved_model"
  process = subprocess.Popen(
    [sys.executable, "-c", KILLED_EXPORT, str(base)], stdout=subprocess.PIPE, text=True
  )
  try:
    assert process.stdout.readline().strip() == "WRITTEN"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
  finally:
    process.kill()
  assert files.existing_versions(base) == []
  leftovers = list(base.iterdir())
  assert leftovers and all(
    p.name.startswith(".") for p in leftovers
  )  # hidden: TF Serving ignores them
  saved_model.export_saved_model(registry.build(), base)
  assert files.existing_versions(base) == [1]
  assert [p.name for p in base.iterdir()] == [
    "1"
  ]  # the next export removed the dead writer's temporary


def test_versions_count_up_and_never_overwrite(tmp_path, trained_model):
  base = tmp_path / "saved_model"
  assert saved_model.export_saved_model(trained_model, base) == base / "1"
  assert saved_model.export_saved_model(trained_model, base) == base / "2"
  assert saved_model.export_saved_model(trained_model, base, version=7) == base / "7"
  assert files.free_version([base]) == 8
  before = sorted(p.name for p in (base / "7").rglob("*"))
  with pytest.raises(KmnistError, match="already exists"):
    saved_model.export_saved_model(trained_model, base, version=7)
  assert sorted(p.name for p in (base / "7").rglob("*")) == before
  assert sorted(p.name for p in base.iterdir()) == ["1", "2", "7"]  # no temporary leftovers


def test_serving_signature_contract(tmp_path, trained_model):
  export_dir = saved_model.export_saved_model(trained_model, tmp_path / "saved_model")
  serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
  (spec,) = serve.structured_input_signature[1].values()
  assert (spec.name, spec.dtype, spec.shape.as_list()) == ("image", tf.uint8, [None, 28, 28])
  outputs = serve.structured_outputs
  assert {k: (v.dtype, v.shape.as_list()) for k, v in outputs.items()} == {
    "class_id": (tf.int64, [None]),
    "probabilities": (tf.float32, [None, 10]),
    "logits": (tf.float32, [None, 10]),
  }


def test_saved_model_reproduces_keras(tmp_path, trained_model, synthetic_datasets):
  images = synthetic_datasets.test.images
  export_dir = saved_model.export_saved_model(trained_model, tmp_path / "saved_model")
  outputs = saved_model.predict_saved_model(export_dir, images)
  reference = trained_model.predict(images / 255.0, verbose=0)
  np.testing.assert_allclose(outputs["logits"], reference, atol=1e-4)
  np.testing.assert_array_equal(outputs["class_id"], reference.argmax(-1))
  np.testing.assert_allclose(outputs["probabilities"].sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_every_model_keeps_the_contract_and_computes_as_keras(
  tmp_path, trained_models, synthetic_datasets, name
):
  model = trained_models[name]
  export_dir = saved_model.export_saved_model(
    model, tmp_path / "saved_model", warmup_images=synthetic_datasets.test.images[:3]
  )
  defs = signature_defs(export_dir)
  for signature, (inputs,) in CONTRACT.items():
    assert {
      alias: (t.dtype, [d.size for d in t.tensor_shape.dim])
      for alias, t in defs[signature].inputs.items()
    } == {
      alias: (dtype.as_datatype_enum, [-1 if s is None else s for s in shape])
      for alias, (dtype, shape) in inputs.items()
    }
    assert set(defs[signature].outputs) == set(OUTPUTS)
  images = synthetic_datasets.test.images[:64]
  served = saved_model.predict_saved_model(export_dir, images)
  reference = registry.predict_logits(model, images)
  np.testing.assert_allclose(served["logits"], reference, atol=1e-4)
  np.testing.assert_array_equal(served["class_id"], reference.argmax(-1))
  assert len(saved_model.read_warmup_requests(export_dir)) == 3 + 2
