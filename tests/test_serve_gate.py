"""kmnist.serve.operations (gate, grpc_gate, health, api_key, metrics, request_log, telemetry): the
operator's side in process: the API key, probes, drain and admission, metrics, request logs, traces
(OpenTelemetry's in-memory exporter), versioned static files, metadata after the files are gone."""

import asyncio
import json
import shutil

import numpy as np
import pytest
from fastapi.testclient import TestClient
from grpc import aio
from kserve.model_repository import ModelRepository
from kserve.protocol.dataplane import DataPlane
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from tensorflow_serving.apis import get_model_status_pb2, model_pb2, model_service_pb2_grpc

from kmnist.export import saved_model
from kmnist.serve import model as serve_model
from kmnist.serve import server as server_lib
from kmnist.serve.operations import api_key, gate, grpc_gate, health, request_log, telemetry
from kmnist.serve.protocols import tf_serving_grpc
from kmnist.serve.repository import versions
from kmnist.serve.web import app as app_lib
from kmnist.serve.web import page
from kmnist.util.errors import KmnistError

KEY = "a-key-of-twenty-four-chars"


@pytest.fixture(scope="module")
def repository(tmp_path_factory, trained_model):
  base = tmp_path_factory.mktemp("gate") / "saved_model"
  saved_model.export_saved_model(trained_model, base)
  manager = versions.VersionManager(base, tf_serving_grpc.load_and_warm_up, poll_seconds=0)
  manager.load_initial()
  repository = ModelRepository()
  repository.update(serve_model.KmnistModel("kmnist", manager))
  return repository


def app_with(repository, operations):
  dataplane = DataPlane(model_registry=repository)
  app = app_lib.create_app(
    dataplane, server_lib.FollowBaseRepository(repository), 10**6, (), operations
  )
  return TestClient(telemetry.instrument_app(app))


def counted(**labels) -> float:
  return REGISTRY.get_sample_value("kmnist_requests_total", labels) or 0.0


DIGIT = {"instances": np.zeros((1, 28, 28), np.uint8).tolist()}


def test_the_api_key_keeps_strangers_out_but_not_the_probes_or_the_page(repository, tmp_path):
  (tmp_path / "keys").write_text(f"# kmnist-serve's keys\n{KEY}\n")
  keys = api_key.Keys(api_key.read(tmp_path / "keys"))
  client = app_with(repository, gate.Operations(health.Health(repository), keys))
  before = counted(model="kmnist", version="", api="tf_serving_rest", status="401")
  for headers in ({}, {"Authorization": "Bearer wrong-key-wrong-key"}, {"Authorization": KEY}):
    reply = client.post("/v1/models/kmnist:predict", json=DIGIT, headers=headers)
    assert reply.status_code == 401 and reply.headers["www-authenticate"] == "Bearer"
    assert reply.json() == {"error": api_key.MISSING}
  assert counted(model="kmnist", version="", api="tf_serving_rest", status="401") == before + 3
  assert client.get("/metrics").status_code == 401  # what it serves is not for strangers either
  for path in ("/", "/sw.js", "/static/app.js", "/v2/health/live", "/v2/health/ready"):
    assert client.get(path).status_code == 200, path
  good = client.post(
    "/v1/models/kmnist:predict", json=DIGIT, headers={"Authorization": f"Bearer {KEY}"}
  )
  assert good.status_code == 200
  for text, problem in (("\n# none\n", "holds no key"), ("short\n", "shorter than 16")):
    (tmp_path / "bad").write_text(text)
    with pytest.raises(KmnistError, match=problem):
      api_key.read(tmp_path / "bad")


def test_probes_drain_and_the_bound_on_requests_in_flight(repository):
  operations = gate.Operations(health.Health(repository, max_in_flight=1))
  client = app_with(repository, operations)
  assert client.get("/v2/health/ready").json() == {"ready": True}
  with operations.health.admitted():  # one request at work: the next is one too many
    refused = client.post("/v1/models/kmnist:predict", json=DIGIT)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert client.get("/v2/health/ready").status_code == 200  # probes are never refused
  assert client.post("/v1/models/kmnist:predict", json=DIGIT).status_code == 200

  async def drain_while_one_runs():
    with operations.health.admitted():
      draining = asyncio.ensure_future(operations.health.drain(30))
      await asyncio.sleep(0.05)
      assert not draining.done()  # waits for the request in flight
    return await draining

  assert asyncio.run(drain_while_one_runs()) == 0
  ready = client.get("/v2/health/ready")
  assert ready.status_code == 503 and ready.json()["error"].startswith("draining")
  assert client.get("/v2/health/live").json() == {"live": True}
  refused = client.post("/v1/models/kmnist:predict", json=DIGIT)
  assert refused.status_code == 503 and refused.headers["connection"] == "close"
  assert "draining" in refused.json()["error"] and refused.headers["retry-after"] == "1"


def test_metrics_and_request_logs_per_model_version_api_and_status(repository, tmp_path):
  logs = {
    "all": request_log.Logging(tmp_path / "all.jsonl", 1.0, inputs=True),
    "none": request_log.Logging(tmp_path / "none.jsonl", 0.0),
  }
  operations = gate.Operations(health.Health(repository))
  client = app_with(repository, operations)
  for logging in logs.values():
    operations.logging_of = lambda model, logging=logging: logging
    before = counted(model="kmnist", version="1", api="tf_serving_rest", status="200")
    assert client.post("/v1/models/kmnist:predict", json=DIGIT).status_code == 200
    assert client.post("/v1/models/kmnist:predict", json={"instances": [[1]]}).status_code == 400
    assert counted(model="kmnist", version="1", api="tf_serving_rest", status="200") == before + 1
  assert not logs["none"].path.exists()
  good, bad = [json.loads(line) for line in logs["all"].path.read_text().splitlines()]
  assert set(good) == {*request_log.FIELDS, "inputs"}
  assert (good["model"], good["version"], good["status"], good["examples"]) == (
    "kmnist",
    "1",
    "200",
    1,
  )
  assert len(good["input_sha256"]) == 64 and np.array(good["inputs"]).shape == (1, 28, 28)
  assert (bad["status"], bad["version"]) == ("400", "")
  assert (
    REGISTRY.get_sample_value("kmnist_examples_total", {"model": "kmnist", "version": "1"}) >= 2
  )
  metrics = client.get("/metrics").text
  for row in REGISTRY_ROWS:
    assert f"# TYPE {row['name'].removesuffix('_total')}" in metrics, row["name"]


REGISTRY_ROWS = __import__("kmnist.serve.operations.metrics", fromlist=["reference"]).reference()


def test_traces_of_rest_and_grpc_requests(repository):
  spans = InMemorySpanExporter()
  provider = TracerProvider()
  provider.add_span_processor(SimpleSpanProcessor(spans))
  telemetry.setup(provider)
  try:
    client = app_with(repository, gate.Operations(health.Health(repository)))
    assert client.post("/v1/models/kmnist:predict", json=DIGIT).status_code == 200
    rest = [s for s in spans.get_finished_spans() if s.attributes.get("kmnist.model") == "kmnist"]
    assert rest and rest[0].attributes["kmnist.model_version"] == "1"

    async def grpc_status():
      server = aio.server(interceptors=(*telemetry.grpc_interceptors(), grpc_gate.GrpcGate()))
      tf_serving_grpc.add_to_server(server, DataPlane(model_registry=repository))
      port = server.add_insecure_port("127.0.0.1:0")
      await server.start()
      async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        spec = model_pb2.ModelSpec(name="kmnist")
        await stub.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(model_spec=spec))
      await server.stop(None)

    asyncio.run(grpc_status())
    names = [s.name for s in spans.get_finished_spans()]
    assert "/tensorflow.serving.ModelService/GetModelStatus" in names
  finally:
    telemetry.setup(None)
  assert telemetry.enabled({"OTEL_TRACES_EXPORTER": "console"})
  assert not telemetry.enabled({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "x"})
  assert not telemetry.enabled({})


def test_static_files_by_versioned_url_and_metadata_from_memory(repository, tmp_path):
  client = app_with(repository, gate.Operations(health.Health(repository)))
  index = client.get("/")
  assert index.headers["cache-control"] == "no-cache"
  assert f'"/static/app.js?v={page.static_version()}"' in index.text
  versioned = client.get(f"/static/app.js?v={page.static_version()}")
  assert versioned.headers["cache-control"] == page.IMMUTABLE
  assert client.get("/static/app.js").headers["cache-control"] == "no-cache"
  # A version still served after its files were removed answers its metadata from memory.
  served = repository.get_model("kmnist").versions.current
  moved = tmp_path / "moved"
  shutil.move(served.path, moved)
  try:
    reply = client.get("/v1/models/kmnist/metadata")
    assert reply.status_code == 200 and reply.json()["model_spec"]["version"] == "1"
  finally:
    shutil.move(moved, served.path)
