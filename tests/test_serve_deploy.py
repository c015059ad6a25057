"""The Dockerfile and the KServe manifests name only what exists: files to copy, the command and
its flags, the ports it listens on, the routes probed, the extra installed. (No Docker or
Kubernetes here: this is what can be checked without them.)"""

import re
import shlex
import shutil
import tomllib

import pytest
from absl import flags
from kserve.model_repository import ModelRepository
from kserve.protocol.dataplane import DataPlane

from kmnist.cli import serve
from kmnist.export import record
from kmnist.serve.repository import batching_parameters, model_config
from kmnist.serve.web import app as app_lib
from kmnist.util.files import existing_versions, is_saved_model

from deploy_files import ROOT, dockerfile, exec_form, manifests

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def parse_serve_flags(args: list[str]) -> flags.FlagValues:
  """Parses args with kmnist-serve's own flag definitions: an unknown flag fails here."""
  fv = flags.FlagValues()
  serve.define_flags(fv)
  fv(["kmnist-serve", *args])
  return fv


def test_dockerfile_copies_what_exists_and_runs_kmnist_serve_with_its_flags():
  steps, serving = dockerfile(), dockerfile("serve")  # serve: what `docker build .` makes
  assert steps["FROM"][-1].endswith(" AS serve")  # the last stage
  copies = [exec_form(c) for c in steps["COPY"]]
  for *sources, _ in copies:
    for source in sources:
      assert (ROOT / source).exists(), source
  (model_copy,) = [c for c in copies if c[0] == "kmnist/reference/saved_model"]
  base = ROOT / model_copy[0]
  assert existing_versions(base)
  assert all(is_saved_model(base / str(v)) for v in existing_versions(base))
  installs = [r for r in serving["RUN"] if "pip install" in r]
  (extras,) = re.findall(r'"\.\[([a-z,]+)\]"', " ".join(installs))
  assert set(extras.split(",")) == {"serve"} <= set(PYPROJECT["project"]["optional-dependencies"])

  (entrypoint,) = [exec_form(e) for e in serving["ENTRYPOINT"]]
  assert entrypoint == ["kmnist-serve"] and "kmnist-serve" in PYPROJECT["project"]["scripts"]
  (cmd,) = [exec_form(c) for c in serving["CMD"]]
  fv = parse_serve_flags(cmd)
  assert fv.model == model_copy[1] and fv.host == "0.0.0.0"
  exposed = {int(p) for e in steps["EXPOSE"] for p in e.split()}
  assert exposed == {fv.http_port, fv.grpc_port}
  (health,) = steps["HEALTHCHECK"]
  assert f"http://127.0.0.1:{fv.http_port}/v2/health/ready" in health
  lines = (ROOT / ".dockerignore").read_text().splitlines()
  ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
  assert not any(
    copy[0].startswith(tuple(i for i in ignored if not i.startswith("*"))) for copy in copies
  )


@pytest.fixture(scope="module")
def client():
  import types

  from fastapi.testclient import TestClient

  repository = ModelRepository()  # readiness needs each model to serve a version: a stand-in
  repository.update(types.SimpleNamespace(name="kmnist", ready=True))
  app = app_lib.create_app(DataPlane(model_registry=repository), None)
  with TestClient(app) as client:
    yield client


def test_kserve_manifest_runs_the_image_with_flags_ports_and_probes_that_exist(client):
  documents = manifests()
  predictor = documents[("InferenceService", "kmnist")]["spec"]["predictor"]
  (container,) = predictor["containers"]
  assert container["name"] == "kserve-container"
  assert container["image"].split(":")[0] == "kmnist-serve"  # the tag the Docker guide builds
  fv = parse_serve_flags(container["args"])
  assert fv.model == "/mnt/models" and fv.host == "0.0.0.0"  # where KServe mounts STORAGE_URI
  (port,) = container["ports"]
  assert port["containerPort"] == fv.http_port and port["name"] == "http1"
  for probe in ("readinessProbe", "livenessProbe"):
    assert container[probe]["httpGet"]["port"] == fv.http_port
    assert client.get(container[probe]["httpGet"]["path"]).status_code == 200
  claim = {e["name"]: e["value"] for e in container["env"]}["STORAGE_URI"]
  assert claim.startswith("pvc://kmnist-models/")
  assert ("PersistentVolumeClaim", "kmnist-models") in documents
  assert predictor["scaleMetric"] == "concurrency" and predictor["minReplicas"] >= 1


def test_tf_serving_manifest_points_at_the_same_model_base():
  documents = manifests()
  custom = documents[("InferenceService", "kmnist")]["spec"]["predictor"]["containers"][0]
  model = documents[("InferenceService", "kmnist-tfserving")]["spec"]["predictor"]["model"]
  assert model["modelFormat"]["name"] == "tensorflow"
  assert model["storageUri"] == {e["name"]: e["value"] for e in custom["env"]}["STORAGE_URI"]
  assert model["storageUri"].endswith("/saved_model")  # a base of versions, as kmnist-train writes


def test_the_family_config_names_the_three_models_where_the_image_has_them(tmp_path):
  """deploy/models.config, copied into the image beside the reference export, serves softmax,
  mlp and cnn once their bases are mounted as the Dockerfile's comment shows."""
  copies = [exec_form(c) for c in dockerfile()["COPY"]]
  (family,) = [c for c in copies if "deploy/models.config" in c]
  assert family == ["deploy/models.config", "deploy/batching.config", "/models/"]
  (reference,) = [c[1] for c in copies if c[0] == "kmnist/reference/saved_model"]
  comment = re.sub(r"\\\n#\s*", " ", (ROOT / "Dockerfile").read_text())
  (command,) = re.findall(r"docker run (.*kmnist-serve --host.*)", comment)
  mounts = dict(re.findall(r"source=\"\$PWD/([^\"]+)\",target=(\S+)", command))
  fv = parse_serve_flags(shlex.split(command.split("kmnist-serve ", 1)[1]))
  assert fv.model_config_file == "/models/models.config" and fv.enable_batching
  assert fv.batching_parameters_file == "/models/batching.config"
  batching_parameters.read(ROOT / "deploy" / "batching.config")
  # The container's /models as a directory here: the reference copied, the mounts as versions.
  assert reference == "/models/kmnist/saved_model"
  reference_export = ROOT / "kmnist" / "reference"
  shutil.copytree(reference_export / "saved_model", tmp_path / "kmnist" / "saved_model")
  for source, target in mounts.items():
    assert source.startswith("runs/") and source.count("/") == 1  # a whole export directory
    version = tmp_path / target.removeprefix("/models/") / "saved_model" / "1"
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"")
  text = (ROOT / "deploy" / "models.config").read_text().replace("/models/", f"{tmp_path}/")
  entries = model_config.parse(text, "deploy/models.config")
  for entry in entries:  # each model's phone files inside its own mount, where its record says
    tflite = record.tflite_dir(entry.base_path / "1", {"tflite_dir": "../../tflite/1"})
    assert tflite == entry.base_path.parent / "tflite" / "1"
  assert [(e.name, e.base_path.parent.name) for e in entries] == [
    ("softmax", "kmnist"),
    ("mlp", "mlp"),
    ("cnn", "cnn"),
  ]
