"""kmnist-serve with several models from TF Serving's model config file, as a real server on
127.0.0.1 (one for the module): version labels over REST and gRPC, the policies all and specific,
the config file changed while clients send requests (no failed request), and batching on."""

import threading
import time
import urllib.request

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
  get_model_status_pb2,
  model_pb2,
  model_service_pb2_grpc,
  predict_pb2,
  prediction_service_pb2_grpc,
)

from benchmarks.serve_load import ServerProcess, http_json
from kmnist.export import record, saved_model
from kmnist.models import registry

# A real server with three models over REST and gRPC: end to end, in the slow suite (the
# config, policies, labels and batching in process: test_serve_model_config.py and others).
pytestmark = pytest.mark.slow

BATCHING = "max_batch_size { value: 32 } batch_timeout_micros { value: 1000 }"


def export(model, base, name):
  return saved_model.export_saved_model(
    model, base, about=record.make(registry.get(name), training_flags={})
  )


def model_config(tmp, models) -> str:
  """models: (name, base, extra fields)."""
  configs = "\n".join(
    f'  config {{ name: "{n}" base_path: "{tmp / b}" model_platform: "tensorflow" {extra} }}'
    for n, b, extra in models
  )
  return f"model_config_list {{\n{configs}\n}}\n"


CNN = (
  "cnn",
  "cnn",
  "model_version_policy { specific { versions: 1 versions: 2 } } "
  'version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 2 }',
)
MODELS = [
  ("softmax", "softmax", ""),
  ("mlp", "mlp", "model_version_policy { all {} }"),
  CNN,
]


@pytest.fixture(scope="module")
def tmp(tmp_path_factory, trained_model, trained_models):
  """softmax 1; mlp 1 and 2; cnn 1 (trained) and 2 (untrained, so it answers otherwise)."""
  tmp = tmp_path_factory.mktemp("family")
  export(trained_model, tmp / "softmax", "softmax")
  for _ in range(2):
    export(trained_models["mlp"], tmp / "mlp", "mlp")
  export(trained_models["cnn"], tmp / "cnn", "cnn")
  tf.keras.utils.set_random_seed(1)
  export(registry.build("cnn"), tmp / "cnn", "cnn")
  (tmp / "models.config").write_text(model_config(tmp, MODELS))
  (tmp / "batching.config").write_text(BATCHING)
  return tmp


@pytest.fixture(scope="module")
def server(tmp):
  with ServerProcess(
    None,
    f"--model_config_file={tmp / 'models.config'}",
    "--model_config_file_poll_wait_seconds=0.2",
    "--poll_seconds=0.2",
    "--enable_batching",
    f"--batching_parameters_file={tmp / 'batching.config'}",
  ) as process:
    yield process


@pytest.fixture(scope="module")
def digits(synthetic_datasets):
  return synthetic_datasets.test.images[:8]


def classes(model, digits) -> list[int]:
  return model.predict(digits / 255.0, verbose=0).argmax(-1).tolist()


def rest(server, path, digits):
  status, reply = http_json(f"{server.url}/v1/models/{path}", {"instances": digits.tolist()})
  return (
    (status, [p["class_id"] for p in reply["predictions"]]) if status == 200 else (status, reply)
  )


def test_labels_name_versions_over_rest_and_grpc(server, digits, trained_models, tmp):
  stable = classes(trained_models["cnn"], digits)
  canary = rest(server, "cnn/versions/2:predict", digits)[1]
  assert stable != canary  # the two versions answer otherwise, so the labels can be told apart
  assert rest(server, "cnn/labels/stable:predict", digits) == (200, stable)
  assert rest(server, "cnn/labels/canary:predict", digits) == (200, canary)
  assert rest(server, "cnn:predict", digits) == (200, canary)  # no version named: the highest
  status, reply = rest(server, "cnn/labels/beta:predict", digits)
  assert status == 400 and reply["error"].startswith("Unrecognized servable version label: beta")
  status, reply = http_json(f"{server.url}/v1/models/cnn/labels/stable")
  assert [s["version"] for s in reply["model_version_status"]] == ["1"]
  status, reply = http_json(f"{server.url}/v1/models/cnn/labels/canary/metadata")
  assert reply["model_spec"]["version"] == "2"
  with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    for label, expected, version in (("stable", stable, 1), ("canary", canary, 2)):
      request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name="cnn", version_label=label)
      )
      request.inputs["image"].CopyFrom(tf.make_tensor_proto(digits))
      response = stub.Predict(request, timeout=30)
      assert tf.make_ndarray(response.outputs["class_id"]).tolist() == expected
      assert response.model_spec.version.value == version
    request.model_spec.version_label = "beta"
    with pytest.raises(grpc.RpcError) as error:
      stub.Predict(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
      get_model_status_pb2.GetModelStatusRequest(
        model_spec=model_pb2.ModelSpec(name="cnn", version_label="canary")
      ),
      timeout=30,
    )
    assert [v.version for v in status.model_version_status] == [2]


def test_policies_all_and_specific_over_the_wire(server, digits, trained_models, tmp):
  mlp = classes(trained_models["mlp"], digits)
  for version in (1, 2):  # all: every version found
    assert rest(server, f"mlp/versions/{version}:predict", digits) == (200, mlp)
  export(trained_models["cnn"], tmp / "cnn", "cnn")  # version 3: not one of cnn's specific ones
  export(trained_models["mlp"], tmp / "mlp", "mlp")  # version 3 of mlp: served, all
  deadline = time.monotonic() + 30
  while rest(server, "mlp/versions/3:predict", digits)[0] != 200 and time.monotonic() < deadline:
    time.sleep(0.1)
  assert rest(server, "mlp/versions/3:predict", digits) == (200, mlp)
  status, reply = rest(server, "cnn/versions/3:predict", digits)
  assert status == 404 and "this server serves versions 1, 2 of cnn" in reply["error"]
  status, reply = http_json(f"{server.url}/v1/models/mlp")
  assert {s["version"]: s["state"] for s in reply["model_version_status"]} == {
    "3": "AVAILABLE",
    "2": "AVAILABLE",
    "1": "AVAILABLE",
  }


def test_the_config_file_changes_while_clients_send_requests(server, digits, tmp, trained_model):
  softmax = classes(trained_model, digits)
  failures, answered, stop = [], [0], threading.Event()

  def client(model):
    while not stop.is_set():
      status, reply = rest(server, f"{model}:predict", digits)
      if status != 200 or (model == "softmax" and reply != softmax):
        failures.append((model, status, reply))
      answered[0] += 1

  threads = [threading.Thread(target=client, args=(m,)) for m in ("softmax", "cnn") * 2]
  for thread in threads:
    thread.start()
  try:
    time.sleep(0.5)
    changed = [("softmax", "softmax", ""), CNN, ("mlp2", "mlp", "")]  # mlp out, mlp2 in
    (tmp / "models.config").write_text(model_config(tmp, changed))
    wait_for_models(server, ["softmax", "cnn", "mlp2"])
    (tmp / "models.config").write_text("model_config_list { config { name: 'x' } ")  # broken
    deadline = time.monotonic() + 10
    while "model config not applied" not in server.log() and time.monotonic() < deadline:
      time.sleep(0.1)
    time.sleep(0.5)
  finally:
    stop.set()
    for thread in threads:
      thread.join()
  assert failures == [] and answered[0] > 20
  assert models(server) == ["softmax", "cnn", "mlp2"]  # the broken file left them as they were
  assert rest(server, "mlp:predict", digits)[0] == 404
  errors = [line for line in server.log().splitlines() if "model config not applied" in line]
  assert len(errors) == 1 and "line 1: " in errors[0] and "Traceback" not in server.log()
  (tmp / "models.config").write_text(model_config(tmp, MODELS))
  wait_for_models(server, ["softmax", "cnn", "mlp"])


def test_batching_is_on_and_answers_as_without(server, digits, trained_models):
  cnn = classes(trained_models["cnn"], digits)
  results = {}

  def ask(i):
    results[i] = rest(server, "cnn/labels/stable:predict", digits[i % 8 : i % 8 + 1])

  threads = [threading.Thread(target=ask, args=(i,)) for i in range(16)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  assert results == {i: (200, [cnn[i % 8]]) for i in range(16)}
  metrics = urllib.request.urlopen(f"{server.url}/metrics", timeout=10).read().decode()
  assert 'kmnist_batch_size_count{model="cnn"}' in metrics


def models(server) -> list[str]:
  return http_json(f"{server.url}/v1/models")[1]["models"]


def wait_for_models(server, names, timeout=60):
  deadline = time.monotonic() + timeout
  while models(server) != names and time.monotonic() < deadline:
    time.sleep(0.1)
  assert models(server) == names, server.log()[-2000:]
