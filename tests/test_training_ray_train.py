"""kmnist-train --ray_workers in this process, with no Ray started: the config every worker runs,
what Ray Train is asked for, joining or starting a cluster, what worker 0 sends back, and the one
line a failed run ends with. Real runs (2 workers of a local Ray against one device, a worker
killed mid-run) are in test_training_distribute_runs.py; the flags' checks in
test_training_config.py and test_cli_train.py."""

import dataclasses
import logging
import os
import pickle
import sys
import types
from pathlib import Path

import pytest
import ray
from absl import logging as absl_logging
from ray.exceptions import ActorDiedError
from ray.train.v2._internal.exceptions import WorkerHealthCheckFailedError
from ray.train.v2.api.exceptions import ControllerError, WorkerGroupError

from kmnist.cli import train as train_cli
from kmnist.training import ray_train, train
from kmnist.training.config import TrainConfig
from kmnist.training.distribute import LostPeerError
from kmnist.util.errors import KmnistError
from kmnist.util.stopwatch import Stopwatch

# Ray Train 2.60's report of a worker whose process died (the part kmnist reads: rank, pid, node).
HEALTH_CHECK_FAILED = """A worker health check failed.
Worker info: Worker(
  actor=Actor(RayTrainWorker, 5a64dfdc92275269a1a6581801000000),
  metadata=ActorMetadata(
    hostname='vm',
    node_id='45115e9ba13fe4061807eee1e58ed0ad4ea6c3e90504d22acc93e030',
    node_ip='10.1.2.3',
    pid=17178,
  ),
  distributed_context=DistributedContext(world_rank=1, world_size=2, local_rank=1),
)"""


def test_every_worker_runs_one_multi_worker_worker_with_absolute_paths(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # Ray starts its workers in a directory of its own
  config = TrainConfig(ray_workers=2, model_dir="run", export_dir="out", data_dir="~/data")
  worker = ray_train.worker_config(config)
  assert (worker.strategy, worker.model_dir, worker.export_dir, worker.manual_dir) == (
    "multi_worker",
    str(tmp_path / "run"),
    str(tmp_path / "out"),
    None,
  )
  assert worker.data_dir == os.path.expanduser("~/data")
  assert dataclasses.replace(worker, **{f: getattr(config, f) for f in ray_train.PATH_FLAGS}) == (
    dataclasses.replace(config, strategy="multi_worker")
  )


def test_ray_train_is_asked_for_n_workers_spread_over_nodes_and_no_restart(monkeypatch):
  for name in ray_train.RAY_TRAIN_ENV:
    monkeypatch.delenv(name, raising=False)  # restored after the test
  config = TrainConfig(ray_workers=3, ray_use_gpu=True)
  trainer = ray_train.trainer(config)
  scaling = trainer.scaling_config
  assert (scaling.num_workers, scaling.use_gpu, scaling.placement_strategy) == (3, True, "SPREAD")
  assert trainer.run_config.failure_config.max_failures == 0
  assert trainer.train_loop_per_worker is ray_train.worker_loop
  assert trainer.train_loop_config["config"] is config
  assert trainer.train_loop_config["verbosity"] == absl_logging.get_verbosity()
  assert {name: os.environ[name] for name in ray_train.RAY_TRAIN_ENV} == ray_train.RAY_TRAIN_ENV


@pytest.fixture
def fake_ray(monkeypatch):
  """ray.init, ray.cluster_resources and ray.shutdown recorded; `calls` lists them."""
  calls = types.SimpleNamespace(init=[], shutdown=0, resources={"CPU": 2.0})
  monkeypatch.setattr(ray, "init", lambda **kwargs: calls.init.append(kwargs))
  monkeypatch.setattr(ray, "cluster_resources", lambda: calls.resources)

  def shutdown():
    calls.shutdown += 1

  monkeypatch.setattr(ray, "shutdown", shutdown)
  return calls


def test_without_an_address_a_local_ray_is_started_with_a_cpu_per_worker(fake_ray):
  ray_train.connect(None, TrainConfig(ray_workers=64))
  ray_train.connect("ray://head:10001", TrainConfig(ray_workers=2))
  assert fake_ray.init == [
    dict(address="local", num_cpus=64, include_dashboard=False, logging_level=logging.ERROR),
    dict(address="ray://head:10001"),
  ]


def test_a_cluster_out_of_reach_or_gpus_a_local_ray_lacks_are_one_line(fake_ray, monkeypatch):
  with pytest.raises(
    KmnistError, match=r"^--ray_use_gpu needs a GPU for each of the 2 workers and "
  ):
    ray_train.connect(None, TrainConfig(ray_workers=2, ray_use_gpu=True))
  assert fake_ray.shutdown == 1  # the local Ray it started is stopped
  fake_ray.resources = {"CPU": 1.0}  # a cluster may add GPU nodes when asked: no refusal there
  ray_train.connect("auto", TrainConfig(ray_workers=2, ray_use_gpu=True))

  def unreachable(**kwargs):
    raise ConnectionError("Could not find any running Ray instance.\nPlease specify ...")

  monkeypatch.setattr(ray, "init", unreachable)
  with pytest.raises(KmnistError) as error:
    ray_train.connect("10.0.0.9:6379", TrainConfig(ray_workers=2))
  assert str(error.value) == (
    "could not reach the Ray cluster at 10.0.0.9:6379 (ConnectionError: Could not find any running "
    "Ray instance.); check --ray_address (or RAY_ADDRESS), or leave both unset to start a local Ray"
  )


def test_run_prepares_the_data_on_one_machine_returns_worker_0s_result_and_stops_ray(
  fake_ray, monkeypatch, tmp_path
):
  loaded = []
  result = train.RunResult(None, {"seconds": {"training": 2.0}}, None, {}, {})  # worker 0's
  fit = types.SimpleNamespace(fit=lambda: types.SimpleNamespace(return_value=result))
  monkeypatch.setattr(ray_train.mnist, "load", lambda data_dir, *_, **__: loaded.append(data_dir))
  monkeypatch.setattr(ray_train, "trainer", lambda config: fit)
  monkeypatch.delenv("RAY_ADDRESS", raising=False)
  config, clock = TrainConfig(ray_workers=2, data_dir=str(tmp_path)), Stopwatch()
  assert ray_train.run(config, log=lambda line: None, clock=clock) is result
  assert loaded == [str(tmp_path)] and fake_ray.shutdown == 1
  assert list(clock.seconds) == ["data", "training", "ray"] and clock.seconds["training"] == 2.0
  monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")  # as `ray job submit` sets it
  assert ray_train.run(config, log=lambda line: None) is result
  assert loaded == [str(tmp_path)] and fake_ray.init[-1] == dict(address="ray://head:10001")

  def fails():
    raise WorkerGroupError("...", {1: WorkerHealthCheckFailedError(HEALTH_CHECK_FAILED, None)})

  fit.fit = fails
  with pytest.raises(KmnistError, match="^lost Ray worker 1 of 2 "):
    ray_train.run(config, log=lambda line: None)
  assert fake_ray.shutdown == 3  # whatever happened, Ray is left


@pytest.mark.parametrize(
  "failures, line",
  [
    (  # every worker names the same fault of the flags: said once
      {r: KmnistError("--batch_size=51 is the global batch and must be ...") for r in (0, 1)},
      "--batch_size=51 is the global batch and must be ...",
    ),
    (  # the chief's TensorFlow noticed the lost peer before Ray did: said in Ray's terms
      {
        0: LostPeerError(
          "lost /job:worker/task:1 ...: restart all of them", "/job:worker/task:1", "Un"
        )
      },
      "lost Ray worker 1 of 2 (TensorFlow: Un), so training cannot go on; run the same command "
      "again (a cluster run starts at step 0)",
    ),
    (
      {
        0: LostPeerError("lost /job:worker/task:1 ...", "/job:worker/task:1", "UnavailableError"),
        1: WorkerHealthCheckFailedError(HEALTH_CHECK_FAILED, ActorDiedError()),
      },
      "lost Ray worker 1 of 2 (pid 17178 on 10.1.2.3: ActorDiedError), so training cannot go on; "
      "run the same command again (a cluster run starts at step 0)",
    ),
  ],
)
def test_a_failed_run_ends_with_the_workers_fault_or_the_lost_worker(failures, line):
  assert ray_train.failure_line(WorkerGroupError("...", failures), workers=2) == line


def test_a_lost_peer_crosses_from_a_ray_worker_whole():
  sent = pickle.loads(
    pickle.dumps(LostPeerError("lost it", "/job:worker/task:1", "UnavailableError"))
  )
  assert (str(sent), sent.peer, sent.cause) == ("lost it", "/job:worker/task:1", "UnavailableError")
  assert isinstance(sent, KmnistError)


def test_a_controller_failure_is_one_line_and_a_bug_is_raised_whole():
  controller = ControllerError(RuntimeError("placement group timed out\nmore lines"))
  assert ray_train.failure_line(controller, workers=2) == (
    "Ray Train could not run the workers (RuntimeError: placement group timed out)"
  )
  bug = WorkerGroupError("...", {1: ValueError("a bug in kmnist")})
  with pytest.raises(WorkerGroupError):
    ray_train.failure_line(bug, workers=2)


def test_worker_0_sends_its_result_back_without_the_model_and_the_others_nothing(
  monkeypatch, capsys
):
  ran, level = [], absl_logging.get_verbosity()
  context = types.SimpleNamespace(get_world_rank=lambda: 0, get_world_size=lambda: 2)
  monkeypatch.setattr(ray_train.train_fn_utils, "get_context", lambda: context)
  monkeypatch.setattr(ray.util, "get_node_ip_address", lambda: "10.1.2.3")
  monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")  # as Ray sets it
  chief = train.RunResult(
    model=object(),
    metrics={"test_accuracy": 0.92},
    saved_model_dir=Path("/shared/exported/saved_model/1"),
    tflite_paths={"float": Path("/shared/exported/tflite/1/kmnist_float.tflite")},
    tflite_report={"rows": []},
  )

  def run(config, log):
    ran.append((config, os.environ.get("TF_USE_LEGACY_KERAS")))
    return chief

  monkeypatch.setattr(ray_train.train, "run", run)
  config = TrainConfig(ray_workers=2, strategy="multi_worker")
  try:
    sent = ray_train.worker_loop({"config": config, "verbosity": absl_logging.ERROR})
    assert sent == dataclasses.replace(chief, model=None)
    assert ran == [(config, None)]  # kmnist's Keras 3, not Ray's tf.keras
    assert absl_logging.get_verbosity() == absl_logging.ERROR
    assert logging.getLogger("tensorflow").level == logging.ERROR
    assert f"Ray worker 0 of 2: pid {os.getpid()} on 10.1.2.3\n" in capsys.readouterr().out
    chief.saved_model_dir = None  # a non-chief worker's result: its exports were scratch
    assert ray_train.worker_loop({"config": config, "verbosity": level}) is None
  finally:
    absl_logging.set_verbosity(level)
    logging.getLogger("tensorflow").setLevel(logging.NOTSET)


def test_the_command_names_the_extra_when_ray_train_cannot_be_imported(monkeypatch):
  monkeypatch.setitem(sys.modules, "kmnist.training.ray_train", None)  # as when `import ray` fails
  monkeypatch.delattr(sys.modules["kmnist.training"], "ray_train")
  with pytest.raises(KmnistError, match=r"^--ray_workers needs Ray Train \(.*\): pip install "):
    train_cli.ray_train()
