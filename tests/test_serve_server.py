"""kmnist.serve.server: the REST app in process, then kmnist-serve as a real server on 127.0.0.1:
README's TF Serving clients (REST and gRPC), Open Inference over gRPC, every bad request, a new
version while requests run, and a clean stop."""

import io
import json
import re
import shutil
import socket
import struct
import threading
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from fastapi.testclient import TestClient
from kserve.model_repository import ModelRepository
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc import grpc_predict_v2_pb2, grpc_predict_v2_pb2_grpc
from PIL import Image, ImageDraw
from tensorflow_serving.apis import (
  get_model_metadata_pb2,
  get_model_status_pb2,
  model_pb2,
  model_service_pb2_grpc,
  predict_pb2,
  prediction_service_pb2_grpc,
)

from benchmarks.readme_clients import readme_grpc_client, readme_rest_client
from benchmarks.serve_load import ServerProcess, http_json, wait_for_version
from kmnist.export import saved_model
from kmnist.models import registry
from kmnist.serve import model as serve_model
from kmnist.serve import server as server_lib
from kmnist.serve.protocols import tf_serving_grpc
from kmnist.serve.repository import versions
from kmnist.serve.web import app as app_lib

MAX_BATCH, MAX_BYTES = 50, 200_000


@pytest.fixture(scope="module")
def base(tmp_path_factory, trained_model, synthetic_datasets):
  base = tmp_path_factory.mktemp("server") / "saved_model"
  saved_model.export_saved_model(
    trained_model, base, warmup_images=synthetic_datasets.test.images[:3]
  )
  return base


@pytest.fixture(scope="module")
def digits(synthetic_datasets):
  return synthetic_datasets.test.images[:20]


@pytest.fixture(scope="module")
def expected_classes(trained_model, digits):
  return trained_model.predict(digits / 255.0, verbose=0).argmax(-1)


# --- The app in process (FastAPI's TestClient): routes, limits, error shapes. ---


@pytest.fixture(scope="module")
def client(base):
  manager = versions.VersionManager(base, tf_serving_grpc.load_and_warm_up, poll_seconds=0)
  manager.load_initial()
  repository = ModelRepository()
  repository.update(serve_model.KmnistModel("kmnist", manager, MAX_BATCH))
  app = app_lib.create_app(
    DataPlane(model_registry=repository), server_lib.FollowBaseRepository(repository), MAX_BYTES
  )
  with TestClient(app) as client:
    yield client


def test_page_and_its_files(client):
  index = client.get("/")
  assert index.status_code == 200 and "text/html" in index.headers["content-type"]
  assert '<canvas id="pad"' in index.text
  for name in ("app.js", "style.css"):
    assert client.get(f"/static/{name}").status_code == 200


def test_tf_serving_status_and_metadata_routes(client):
  status = {
    "model_version_status": [
      {
        "version": "1",
        "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""},
      }
    ]
  }
  assert client.get("/v1/models/kmnist").json() == status
  assert client.get("/v1/models/kmnist/versions/1").json() == status
  metadata = client.get("/v1/models/kmnist/versions/1/metadata").json()
  assert metadata["model_spec"]["version"] == "1"
  for url, code, message in [
    ("/v1/models/kmnist/versions/7", 404, "Could not find version 7 of model kmnist"),
    ("/v1/models/kmnist/versions/7/metadata", 404, r"Specific(kmnist, 7)"),
    ("/v1/models/other", 404, "Model with name other does not exist."),
    ("/v1/nothing", 404, "GET /v1/nothing: Not Found"),
  ]:
    reply = client.get(url)
    assert (reply.status_code, list(reply.json())) == (code, ["error"]), url
    assert message in reply.json()["error"]


def test_version_pinned_predict(client, digits, expected_classes):
  body = {"instances": digits[:3].tolist()}
  reply = client.post("/v1/models/kmnist/versions/1:predict", json=body)
  assert [p["class_id"] for p in reply.json()["predictions"]] == expected_classes[:3].tolist()
  for url, code, message in [
    ("/v1/models/kmnist/versions/2:predict", 404, "Specific(kmnist, 2)"),
    (
      "/v1/models/kmnist/labels/stable:predict",
      400,
      "label: stable (model kmnist has labels: none",
    ),
  ]:
    reply = client.post(url, json=body)
    assert reply.status_code == code and message in reply.json()["error"], url


def test_request_size_limit(client):
  big = b'{"instances": [' + b"0," * MAX_BYTES + b"0]}"
  reply = client.post("/v1/models/kmnist:predict", content=big)
  assert reply.status_code == 413
  assert reply.json()["error"].startswith(
    f"request body of {len(big):,} bytes is over this server's limit of {MAX_BYTES:,}"
  )
  chunks = (big[i : i + 65536] for i in range(0, len(big), 65536))  # no Content-Length: chunked
  reply = client.post("/v1/models/kmnist:predict", content=chunks)
  assert reply.status_code == 413 and "more than" in reply.json()["error"]


def test_errors_are_one_json_line(client):
  bad_json = client.post(
    "/v1/models/kmnist:predict", content=b"{oops", headers={"Content-Type": "application/json"}
  )
  assert bad_json.status_code == 400
  assert bad_json.json()["error"].startswith("request body is not valid JSON (")
  v2 = client.post("/v2/models/kmnist/infer", json={"inputs": [{"name": "image"}]})
  assert v2.status_code == 400
  assert v2.json()["error"] == (
    "not a valid Open Inference request (inputs.0.shape: Field required; inputs.0.datatype: "
    "Field required; inputs.0.data: Field required)"
  )


def test_repository_api_cannot_unload(client):
  reply = client.post("/v2/repository/models/kmnist/unload")
  assert reply.status_code == 501 and "does not unload kmnist on request" in reply.json()["error"]
  assert client.post("/v2/repository/models/kmnist/load").status_code == 200
  assert client.get("/v2/models/kmnist/ready").status_code == 200


def test_prepare_route(client):
  picture = Image.new("RGB", (200, 200), "white")
  ImageDraw.Draw(picture).line([(100, 20), (100, 180)], fill="black", width=16)
  buffer = io.BytesIO()
  picture.save(buffer, format="PNG")
  pixels = np.array(client.post("/demo/prepare", content=buffer.getvalue()).json()["pixels"])
  assert pixels.shape == (28, 28) and pixels.max() > 200 and pixels[:, :5].max() == 0
  blank = client.post("/demo/prepare", content=b"\x89PNG not really")
  assert blank.status_code == 400 and "not a readable image" in blank.json()["error"]


def test_metrics(client, digits):
  assert (
    client.post("/v1/models/kmnist:predict", json={"instances": digits[:1].tolist()}).status_code
    == 200
  )
  metrics = client.get("/metrics").text
  for name in (
    "request_preprocess_seconds",
    "request_predict_seconds",
    "request_postprocess_seconds",
  ):
    assert f'{name}_count{{model_name="kmnist"}}' in metrics


def test_a_server_error_is_still_logged_with_its_traceback(client, monkeypatch, caplog):
  def broken(picture):
    raise RuntimeError("a fault of the server's own")

  monkeypatch.setattr(app_lib.page, "prepare_picture", broken)
  with pytest.raises(RuntimeError, match="a fault of the server's own"):
    client.post("/demo/prepare", content=b"any drawing")
  assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in caplog.records)


# --- kmnist-serve itself, one process for the rest of the module. ---


@pytest.fixture(scope="module")
def server(base, tmp_path_factory):
  local = tmp_path_factory.mktemp("served") / "saved_model"
  shutil.copytree(base, local)
  with ServerProcess(
    local,
    "--poll_seconds=0.2",
    f"--max_batch_size={MAX_BATCH}",
    f"--max_request_bytes={MAX_BYTES}",
    "--max_requests_in_flight=400",  # the hang-up test holds 300 bodies open at once
  ) as process:
    process.base = local
    yield process


def test_readme_clients_work_unchanged(server, digits, expected_classes):
  assert [readme_rest_client(server.url, d) for d in digits[:5]] == expected_classes[:5].tolist()
  np.testing.assert_array_equal(readme_grpc_client(server.grpc_port, digits), expected_classes)


def test_open_inference_rest_and_grpc(server, digits, expected_classes):
  status, reply = http_json(
    f"{server.url}/v2/models/kmnist/infer",
    {
      "inputs": [
        {
          "name": "image",
          "shape": [20, 28, 28],
          "datatype": "UINT8",
          "data": digits.ravel().tolist(),
        }
      ]
    },
  )
  assert status == 200 and reply["model_version"] == "1"
  (class_id,) = [o for o in reply["outputs"] if o["name"] == "class_id"]
  assert class_id["data"] == expected_classes.tolist()
  with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
    stub = grpc_predict_v2_pb2_grpc.GRPCInferenceServiceStub(channel)
    request = grpc_predict_v2_pb2.ModelInferRequest(model_name="kmnist")
    request.inputs.add(name="image", datatype="UINT8", shape=[20, 28, 28])
    request.raw_input_contents.append(digits.tobytes())
    response = stub.ModelInfer(request, timeout=10)
    names = [o.name for o in response.outputs]
    class_ids = np.frombuffer(response.raw_output_contents[names.index("class_id")], np.int64)
    np.testing.assert_array_equal(class_ids, expected_classes)
    assert stub.ModelReady(grpc_predict_v2_pb2.ModelReadyRequest(name="kmnist")).ready


def test_tf_serving_grpc_status_metadata_and_errors(server):
  with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
      get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name="kmnist")),
      timeout=10,
    )
    (version,) = status.model_version_status
    assert version.version == 1
    assert version.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    metadata = stub.GetModelMetadata(
      get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=model_pb2.ModelSpec(name="kmnist"), metadata_field=["signature_def"]
      )
    )
    defs = get_model_metadata_pb2.SignatureDefMap()
    metadata.metadata["signature_def"].Unpack(defs)
    assert set(defs.signature_def) == {"serving_default", "serving_float"}
    for name, array, code in [
      ("other", np.zeros((1, 28, 28), np.uint8), "NOT_FOUND"),
      ("kmnist", np.zeros((1, 28, 28), np.int32), "INVALID_ARGUMENT"),
      ("kmnist", np.zeros((MAX_BATCH + 1, 28, 28), np.uint8), "INVALID_ARGUMENT"),
    ]:
      request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=name))
      request.inputs["image"].CopyFrom(tf.make_tensor_proto(array))
      with pytest.raises(grpc.RpcError) as error:
        stub.Predict(request, timeout=10)
      assert error.value.code().name == code


def bad_requests(digits):
  """(what is wrong, path, body, status, words the error must contain)."""
  one = digits[:1].tolist()
  return [
    ("malformed JSON", ":predict", b'{"instances": [', 400, "not valid JSON"),
    ("wrong shape", ":predict", {"instances": [[[0] * 27] * 28]}, 400, "shape [1, 28, 27]"),
    ("wrong dtype", ":predict", {"instances": [[[0.5] * 28] * 28]}, 400, "must hold integers"),
    ("pixels out of range", ":predict", {"instances": [[[256] * 28] * 28]}, 400, "out of range"),
    (
      "float pixels out of range",
      ":predict",
      {"signature_name": "serving_float", "instances": [[2.0] * 784]},
      400,
      "out of range",
    ),
    (
      "unknown signature",
      ":predict",
      {"signature_name": "classify", "instances": one},
      400,
      "'classify' is not a signature",
    ),
    (
      "unknown model",
      "other:predict",
      {"instances": one},
      404,
      "Model with name other does not exist",
    ),
    (
      "batch over the limit",
      ":predict",
      {"instances": [one[0]] * (MAX_BATCH + 1)},
      400,
      f"limit of {MAX_BATCH}",
    ),
    (
      "body over the limit",
      ":predict",
      b"[" + b" " * MAX_BYTES + b"]",
      413,
      f"limit of {MAX_BYTES:,}",
    ),
    ("no instances", ":predict", {"instance": one}, 400, 'neither "instances"'),
    (
      "V2 wrong datatype",
      "/v2",
      {"inputs": [{"name": "image", "shape": [1, 784], "datatype": "FP32", "data": [0.0] * 784}]},
      400,
      "has datatype FP32",
    ),
    (
      "V2 without a JSON type",
      "/v2 form",
      {"inputs": []},
      400,
      "must be sent with Content-Type: application/json (this one: "
      "application/x-www-form-urlencoded)",
    ),
  ]


def test_every_bad_request_gets_its_4xx_and_the_server_answers_the_next(
  server, digits, expected_classes
):
  for what, path, body, code, words in bad_requests(digits):
    url = (
      f"{server.url}/v2/models/kmnist/infer"
      if path.startswith("/v2")
      else f"{server.url}/v1/models/{path if path != ':predict' else 'kmnist:predict'}"
    )
    if path == "/v2 form":  # what urllib sends by default
      try:
        reply = urllib.request.urlopen(url, json.dumps(body).encode())
      except urllib.error.HTTPError as e:
        status, reply = e.code, json.loads(e.read())
    else:
      status, reply = http_json(url, body)
    assert (status, list(reply)) == (code, ["error"]), what
    assert words in reply["error"] and "\n" not in reply["error"], (what, reply)
    assert readme_rest_client(server.url, digits[0]) == expected_classes[0], what
  log = server.log()
  assert "Traceback" not in log


HANG_UP_ROUTES = [
  "/v1/models/kmnist:predict",
  "/v1/models/kmnist/versions/1:predict",
  "/v1/models/kmnist:explain",
  "/v2/models/kmnist/infer",
  "/demo/prepare",
]
HANG_UPS = ["close", "reset", "chunked"]


def start_a_body(port: int, route: str, how: str) -> socket.socket:
  """A POST that sends 2,001 bytes of its body, then waits: of a Content-Length of 100,000, or
  inside a chunk of a chunked body."""
  connection = socket.create_connection(("127.0.0.1", port))
  length = "Transfer-Encoding: chunked" if how == "chunked" else "Content-Length: 100000"
  head = f"POST {route} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
  chunk = b"186a0\r\n" if how == "chunked" else b""  # a chunk of 100,000 bytes, cut
  connection.sendall(f"{head}{length}\r\n\r\n".encode() + chunk + b"[" + b"0," * 1000)
  return connection


def hang_up(connection: socket.socket, how: str) -> None:
  if how == "reset":  # SO_LINGER 0: the close sends a TCP reset, not a FIN
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
  connection.close()


def test_clients_that_hang_up_mid_body_are_one_line_each_never_a_traceback(
  server, digits, expected_classes
):
  logged_before = len(server.log().splitlines())
  kinds = [(route, how) for route in HANG_UP_ROUTES for how in HANG_UPS] * 20  # 300
  open_bodies = [(start_a_body(server.http_port, r, how), how) for r, how in kinds]
  time.sleep(0.5)  # 300 requests mid-body at once, what they sent read by the server
  for connection, how in open_bodies:
    hang_up(connection, how)
  assert readme_rest_client(server.url, digits[0]) == expected_classes[0]
  status, reply = http_json(
    f"{server.url}/v1/models/kmnist:predict", {"instances": digits.tolist()}
  )
  assert (
    status == 200 and [p["class_id"] for p in reply["predictions"]] == expected_classes.tolist()
  )
  # A reset may reach the server before it reads the request; a FIN never does.
  closed = sum(how != "reset" for _, how in kinds)
  deadline = time.monotonic() + 10
  while len(server.log().splitlines()) - logged_before < closed and time.monotonic() < deadline:
    time.sleep(0.1)
  time.sleep(0.3)
  log = server.log()
  lines = log.splitlines()[logged_before:]
  assert "Traceback" not in log
  assert closed <= len(lines) <= len(kinds), lines[:5]
  routes = "|".join(re.escape(route) for route in HANG_UP_ROUTES)
  pattern = re.compile(
    rf"client hung up before sending the whole body \(POST ({routes}), "
    r"(\d[\d,]*) bytes of (100,000|a chunked body)\)$"
  )
  assert [line for line in lines if not pattern.search(line)] == []
  found = {pattern.search(line).groups() for line in lines}
  assert {route for route, _, _ in found} == set(HANG_UP_ROUTES)
  assert {("2,001", "100,000"), ("2,001", "a chunked body")} <= {(n, of) for _, n, of in found}


def test_listens_on_127_0_0_1_only(server):
  listening = set()
  for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    with open(table) as f:
      lines = f.read().splitlines()[1:]
    for line in lines:
      local, state = line.split()[1], line.split()[3]
      if state == "0A":  # LISTEN
        address, port = local.rsplit(":", 1)
        listening.add((address, int(port, 16)))
  loopback = {"0100007F", "0000000000000000FFFF00000100007F"}  # 127.0.0.1, also v4-mapped
  for port in (server.http_port, server.grpc_port):
    addresses = {address for address, p in listening if p == port}
    assert addresses and addresses <= loopback, (port, addresses)


def test_a_new_version_is_served_while_requests_run(server, digits, expected_classes):
  failures, answers, stop = [], [], threading.Event()

  def client():
    while not stop.is_set():
      try:
        status, reply = http_json(
          f"{server.url}/v1/models/kmnist:predict", {"instances": digits[:5].tolist()}
        )
        if status != 200:
          failures.append(reply)
        else:
          answers.append([p["class_id"] for p in reply["predictions"]])
      except OSError as e:
        failures.append(repr(e))

  threads = [threading.Thread(target=client) for _ in range(4)]
  for thread in threads:
    thread.start()
  try:
    time.sleep(0.5)
    # Version 2: the untrained model (all logits 0, so class 0), written as kmnist-train writes.
    saved_model.export_saved_model(registry.build(), server.base)
    written = time.time()
    seconds = wait_for_version(server, 2, since=written, timeout=30)
    time.sleep(0.5)
  finally:
    stop.set()
    for thread in threads:
      thread.join()
  assert seconds is not None and failures == []
  assert answers[0] == expected_classes[:5].tolist() and answers[-1] == [0] * 5
  assert set(map(tuple, answers)) == {tuple(expected_classes[:5]), (0,) * 5}  # never a mixture
  status, reply = http_json(f"{server.url}/v1/models/kmnist")
  assert [(s["version"], s["state"]) for s in reply["model_version_status"]] == [
    ("2", "AVAILABLE"),
    ("1", "END"),
  ]
  assert "serving version 2" in server.log() and "version 1 released" in server.log()


def test_sigterm_under_load_drains_loses_no_accepted_request_and_exits_0(server, digits):
  """Eight clients (a new connection per request, as urllib makes them): each request gets its
  answer (200), or the drain's 503 with Retry-After, or a refused connection once the server has
  closed; never a reset or a cut answer. A client stops at its first refusal, as a load balancer
  does once readiness is false."""
  outcomes, started = [], threading.Event()
  body = json.dumps({"instances": digits[:5].tolist()}).encode()

  def client():
    while True:
      request = urllib.request.Request(f"{server.url}/v1/models/kmnist:predict", data=body)
      try:
        with urllib.request.urlopen(request, timeout=30) as reply:
          json.loads(reply.read())
          outcomes.append("ok")
          started.set()
      except urllib.error.HTTPError as e:
        refused = e.code == 503 and e.headers["Retry-After"] == "1"
        outcomes.append("drained" if refused else f"HTTP {e.code}")
        return
      except urllib.error.URLError as e:
        refused = isinstance(e.reason, ConnectionRefusedError)
        outcomes.append("closed" if refused else f"lost: {e.reason!r}")
        return
      except OSError as e:  # a reset, a cut answer
        outcomes.append(f"lost: {e!r}")
        return

  threads = [threading.Thread(target=client) for _ in range(8)]
  for thread in threads:
    thread.start()
  assert started.wait(30)
  time.sleep(0.3)
  assert server.stop() == 0
  for thread in threads:
    thread.join()
  assert outcomes.count("ok") > 8
  assert {o for o in outcomes if o != "ok"} <= {"drained", "closed"}, outcomes
  assert "SIGTERM: draining" in server.log() and "Traceback" not in server.log()
