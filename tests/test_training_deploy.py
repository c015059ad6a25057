"""deploy/training/'s jobs hold to the schemas of the objects they declare, and to kmnist: the TFJob
to the Kubeflow Training Operator's SDK models, the Indexed Job and its headless Service to
Kubernetes' own (batch/v1, core/v1), the RayJob to KubeRay's fields (its pods to core/v1). Each
runs kmnist-train, from the image of the Dockerfile's train stage, with flags it has and a cluster
it can join, and writes its export where deploy/kserve/'s InferenceService reads. (No Kubernetes
here: this is what can be checked without one.)"""

import copy
import json
import re
import shlex
import tomllib

import kubeflow.training.models as models  # Kubernetes' own models too (kubernetes.client)
import pytest
from absl import flags
from kubeflow.training.api_client import ApiClient

from kmnist.cli import common
from kmnist.cli import train as train_cli

from deploy_files import ROOT, dockerfile, exec_form, manifests

# KubeRay's RayJob (ray-operator/apis/ray/v1: rayjob_types.go, raycluster_types.go; KubeRay 1.4),
# its fields as the SDK models give theirs, {JSON name: type}; the pods are core/v1's.
KUBERAY = {
  "RayJob": {"apiVersion": "str", "kind": "str", "metadata": "V1ObjectMeta", "spec": "RayJobSpec"},
  "RayJobSpec": {
    **dict.fromkeys(["activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"], "int"),
    **dict.fromkeys(["entrypoint", "runtimeEnvYAML", "jobId", "submissionMode"], "str"),
    **dict.fromkeys(["entrypointResources", "managedBy", "schedule"], "str"),
    **dict.fromkeys(["entrypointNumCpus", "entrypointNumGpus"], "float"),
    **dict.fromkeys(["shutdownAfterJobFinishes", "suspend"], "bool"),
    **dict.fromkeys(["metadata", "clusterSelector"], "dict(str, str)"),
    **dict.fromkeys(["submitterConfig", "deletionStrategy"], "object"),
    "rayClusterSpec": "RayClusterSpec",
    "submitterPodTemplate": "V1PodTemplateSpec",
  },
  "RayClusterSpec": {
    "headGroupSpec": "HeadGroupSpec",
    "workerGroupSpecs": "list[WorkerGroupSpec]",
    "rayVersion": "str",
    "enableInTreeAutoscaling": "bool",
    "autoscalerOptions": "object",
    "headServiceAnnotations": "dict(str, str)",
    "suspend": "bool",
  },
  "HeadGroupSpec": {
    "serviceType": "str",
    "headService": "V1Service",
    "enableIngress": "bool",
    "rayStartParams": "dict(str, str)",
    "template": "V1PodTemplateSpec",
  },
  "WorkerGroupSpec": {
    "groupName": "str",
    **dict.fromkeys(["replicas", "minReplicas", "maxReplicas", "numOfHosts"], "int"),
    "rayStartParams": "dict(str, str)",
    "template": "V1PodTemplateSpec",
    "scaleStrategy": "object",
  },
}
# The fields KubeRay's JSON tags make required (no omitempty).
KUBERAY_REQUIRED = {
  "RayClusterSpec": {"headGroupSpec"},
  "HeadGroupSpec": {"rayStartParams", "template"},
  "WorkerGroupSpec": {"groupName", "rayStartParams", "template"},
}
SCHEMAS = {
  ("kubeflow.org/v1", "TFJob"): "KubeflowOrgV1TFJob",
  ("batch/v1", "Job"): "V1Job",
  ("v1", "Service"): "V1Service",
  ("ray.io/v1", "RayJob"): "RayJob",
}
PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object}


def schema_errors(value, type_name: str, where: str) -> list[str]:
  """What in `value` the schema of `type_name` has no place for: a field it does not have, a value
  of another type, a required field missing (the SDK models' own checks, on deserializing)."""
  if match := re.fullmatch(r"list\[(.+)\]", type_name):
    if not isinstance(value, list):
      return [f"{where}: a list of {match[1]} expected"]
    return [e for i, v in enumerate(value) for e in schema_errors(v, match[1], f"{where}[{i}]")]
  if match := re.fullmatch(r"dict\(str, (.+)\)", type_name):
    if not isinstance(value, dict):
      return [f"{where}: a mapping expected"]
    return [e for k, v in value.items() for e in schema_errors(v, match[1], f"{where}.{k}")]
  if type_name in PRIMITIVES:
    wrong = not isinstance(value, PRIMITIVES[type_name]) or (
      isinstance(value, bool) and type_name in ("int", "float")
    )
    return [f"{where}: {value!r} is not a {type_name}"] if wrong else []
  if not isinstance(value, dict):
    return [f"{where}: a {type_name} expected"]
  if type_name in KUBERAY:
    fields, required = KUBERAY[type_name], KUBERAY_REQUIRED.get(type_name, set())
    errors = [f"{where}: {type_name} needs {k}" for k in sorted(required - set(value))]
  else:
    model = getattr(models, type_name)
    fields = {model.attribute_map[a]: t for a, t in model.openapi_types.items()}
    try:
      ApiClient()._ApiClient__deserialize(value, type_name)
      errors = []
    except (ValueError, TypeError) as e:
      errors = [f"{where}: {e}"]
  errors += [f"{where}.{k}: {type_name} has no such field" for k in value if k not in fields]
  return errors + [
    e for k, v in value.items() if k in fields for e in schema_errors(v, fields[k], f"{where}.{k}")
  ]


def pods() -> dict:
  """(kind, name) -> the pod spec that runs kmnist: the TFJob's worker, the Job's, the RayJob's
  head (which runs the entrypoint) and worker group."""
  d = manifests("training")
  cluster = d[("RayJob", "kmnist-train")]["spec"]["rayClusterSpec"]
  return {
    ("TFJob", "worker"): d[("TFJob", "kmnist-train")]["spec"]["tfReplicaSpecs"]["Worker"],
    ("Job", "pod"): d[("Job", "kmnist-train")]["spec"],
    ("RayJob", "head"): cluster["headGroupSpec"],
    ("RayJob", "worker"): cluster["workerGroupSpecs"][0],
  }


def test_every_object_holds_to_its_schema():
  found = manifests("training")
  assert {(d["apiVersion"], d["kind"]) for d in found.values()} == set(SCHEMAS)
  for (kind, name), document in found.items():
    type_name = SCHEMAS[(document["apiVersion"], kind)]
    assert schema_errors(document, type_name, f"{kind}/{name}") == []


def test_the_schema_check_finds_what_does_not_belong():
  found = manifests("training")
  tfjob = copy.deepcopy(found[("TFJob", "kmnist-train")])
  tfjob["spec"]["tfReplicaSpecs"]["Worker"]["replica"] = 2  # a misspelt field
  del tfjob["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["name"]
  errors = schema_errors(tfjob, "KubeflowOrgV1TFJob", "TFJob")
  assert "TFJob.spec.tfReplicaSpecs.Worker.replica: KubeflowOrgV1ReplicaSpec has no such field" in (
    errors
  )
  assert any("`name`, must not be `None`" in e for e in errors)
  rayjob = copy.deepcopy(found[("RayJob", "kmnist-train")])
  group = rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
  del group["groupName"]
  group["replicas"] = "2"
  assert schema_errors(rayjob, "RayJob", "RayJob") == [
    "RayJob.spec.rayClusterSpec.workerGroupSpecs[0]: WorkerGroupSpec needs groupName",
    "RayJob.spec.rayClusterSpec.workerGroupSpecs[0].replicas: '2' is not a int",
  ]


def train_config(args: list[str]):
  """kmnist-train's TrainConfig for these arguments: an unknown flag fails here."""
  fv = flags.FlagValues()
  train_cli.define_flags(fv)
  fv(["kmnist-train", *args])
  return common.config_from_flags(fv)


def kmnist_commands() -> dict:
  """(kind, name) -> the kmnist-train arguments of each job."""
  commands = {}
  for (kind, name), pod in pods().items():
    for container in pod["template"]["spec"]["containers"]:
      if "command" in container:
        assert container["command"] == ["kmnist-train"]
        commands[(kind, name)] = container["args"]
  words = shlex.split(manifests("training")[("RayJob", "kmnist-train")]["spec"]["entrypoint"])
  assert words[0] == "kmnist-train"
  commands[("RayJob", "head")] = words[1:]
  return commands


def test_each_job_runs_kmnist_train_from_the_train_image_with_flags_it_has(monkeypatch):
  train_stage = dockerfile("train")
  assert [exec_form(e) for e in train_stage["ENTRYPOINT"]] == [["kmnist-train"]]
  assert "docker build --target train -t kmnist-train ." in (ROOT / "Dockerfile").read_text()
  for pod in pods().values():
    for container in pod["template"]["spec"]["containers"]:
      assert container["image"] == "kmnist-train:latest"
  commands = kmnist_commands()
  assert set(commands) == {("TFJob", "worker"), ("Job", "pod"), ("RayJob", "head")}
  monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config(["a:1", "b:1"], 0)))  # as the pods get it
  for key, args in commands.items():
    config = train_config(args).validate()
    assert config.strategy == "multi_worker" or config.ray_workers == 2, key


def test_the_chief_exports_where_the_inference_service_reads():
  served = manifests()[("InferenceService", "kmnist")]["spec"]["predictor"]["containers"][0]
  storage = {e["name"]: e["value"] for e in served["env"]}["STORAGE_URI"]
  claim, base = re.fullmatch(r"pvc://([\w-]+)/(.+)", storage).groups()
  commands = kmnist_commands()
  for key, pod in pods().items():
    spec = pod["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    (container,) = spec["containers"]
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    config = train_config(commands.get(key, commands[("RayJob", "head")]))
    assert mounts[config.export_dir]["persistentVolumeClaim"]["claimName"] == claim
    assert base == "saved_model"  # the versions kmnist-train writes under <export_dir>/saved_model
    assert config.model_dir.startswith(config.export_dir + "/")  # beside it, on the same volume
    assert "emptyDir" in mounts[config.data_dir]  # each pod prepares MNIST for itself
    assert spec["securityContext"]["fsGroup"] == 1000  # the train image's user writes there
  assert "--uid 1000" in " ".join(dockerfile("train")["RUN"])


def tf_config(workers: list[str], index) -> dict:
  return {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}


def test_the_indexed_jobs_pods_build_tf_config_from_their_index(monkeypatch):
  import tensorflow as tf

  from kmnist.training import strategies

  found = manifests("training")
  job, service = found[("Job", "kmnist-train")], found[("Service", "kmnist-train")]
  spec, pod = job["spec"], job["spec"]["template"]
  assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == 2
  assert (spec["backoffLimit"], pod["spec"]["restartPolicy"]) == (0, "Never")  # no restarts
  assert service["spec"]["clusterIP"] == "None" and pod["spec"]["subdomain"] == "kmnist-train"
  assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
  (container,) = pod["spec"]["containers"]
  (port,) = container["ports"]
  assert [p["port"] for p in service["spec"]["ports"]] == [port["containerPort"]]
  env = container["env"]
  assert env[0]["valueFrom"]["fieldRef"]["fieldPath"] == (
    "metadata.annotations['batch.kubernetes.io/job-completion-index']"
  )
  (template,) = [e["value"] for e in env if e["name"] == "TF_CONFIG"]
  hosts = [f"kmnist-train-{i}.kmnist-train:{port['containerPort']}" for i in range(2)]
  for index in range(spec["completions"]):
    # Kubernetes expands $(NAME) from the variables listed before; pod i's hostname is
    # <job>-<i>, in the Service's subdomain.
    value = template.replace(f"$({env[0]['name']})", str(index))
    strategies.check_tf_config(value)
    assert json.loads(value) == tf_config(hosts, index)
    monkeypatch.setenv("TF_CONFIG", value)
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    assert (resolver.task_type, resolver.task_id) == ("worker", index)
    assert resolver.cluster_spec().as_dict() == {"worker": hosts}


def test_the_tfjob_and_the_rayjob_are_the_engines_own_two_workers():
  found = manifests("training")
  tfjob = found[("TFJob", "kmnist-train")]["spec"]
  worker = tfjob["tfReplicaSpecs"]["Worker"]
  assert list(tfjob["tfReplicaSpecs"]) == ["Worker"] and worker["replicas"] == 2
  assert (tfjob["runPolicy"]["backoffLimit"], worker["restartPolicy"]) == (0, "Never")
  (container,) = worker["template"]["spec"]["containers"]
  # The operator writes TF_CONFIG into the container named tensorflow, for its port tfjob-port.
  assert container["name"] == "tensorflow"
  assert container["ports"] == [{"name": "tfjob-port", "containerPort": 2222}]
  rayjob = found[("RayJob", "kmnist-train")]["spec"]
  cluster = rayjob["rayClusterSpec"]
  (group,) = cluster["workerGroupSpecs"]
  config = train_config(kmnist_commands()[("RayJob", "head")])
  # One kmnist worker on each worker pod (one CPU of Ray's each, one per worker), none on the head.
  assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == config.ray_workers
  assert group["rayStartParams"]["num-cpus"] == "1"
  assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
  assert config.ray_address == "auto" and rayjob["backoffLimit"] == 0
  # The Ray KubeRay is told of is the image's, pinned as the tests run it.
  pins = dict(
    line.split("==")
    for line in (ROOT / ".ci" / "constraints.txt").read_text().splitlines()
    if "==" in line
  )
  assert cluster["rayVersion"] == pins["ray"]
  assert f'"ray[default]=={pins["ray"]}"' in " ".join(dockerfile("train")["RUN"])
  ray_range = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
  assert any("ray[train]" in r for r in ray_range["optional-dependencies"]["ray"])


@pytest.mark.parametrize("kind", ["TFJob", "Job", "RayJob"])
def test_each_jobs_comment_says_how_to_build_and_start_it(kind):
  path = {"TFJob": "tfjob", "Job": "indexed-job", "RayJob": "rayjob"}[kind]
  text = (ROOT / "deploy" / "training" / f"{path}.yaml").read_text()
  assert "#   docker build --target train -t kmnist-train ." in text
  assert f"#   kubectl apply -f deploy/training/{path}.yaml" in text
  assert "#   kubectl apply -f deploy/kserve/inferenceservice.yaml" in text  # the volume's claim
