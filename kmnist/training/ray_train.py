"""kmnist-train on a Ray cluster (`--ray_workers=N`): Ray Train starts the workers and writes their
TF_CONFIG, and each one runs `train.run` under --strategy=multi_worker, as the workers of a
hand-started cluster do.

    run(config, log)      # the driver: the kmnist-train process; a local Ray without an address
    worker_loop(values)   # on each of the N workers (Ray actors), with TF_CONFIG set by Ray

Ray's world rank i is TF_CONFIG's worker i, so worker 0 is the chief: it writes metrics.json and the
exports where the flags say (on one machine, there; on a cluster, a path every worker reaches, such
as a shared volume) and returns its RunResult (less the model) to the driver, which prints it as
any run does. A worker that is lost or names a fault ends the run with one line and exit 2: Ray is
told not to restart (a cluster run starts at step 0, so a restart is the same command again).
"""

import dataclasses
import logging
import os
import re
import time
from collections.abc import Callable

import ray
from absl import logging as absl_logging
from ray.train.v2._internal.exceptions import WorkerHealthCheckFailedError
from ray.train.v2.api import train_fn_utils
from ray.train.v2.api.config import FailureConfig, LoggingConfig, RunConfig, ScalingConfig
from ray.train.v2.api.exceptions import ControllerError, TrainingFailedError
from ray.train.v2.tensorflow.tensorflow_trainer import TensorflowTrainer

from kmnist.data import mnist
from kmnist.training import distribute, train
from kmnist.training.config import TrainConfig
from kmnist.util.errors import KmnistError, one_line
from kmnist.util.stopwatch import Stopwatch

PATH_FLAGS = ("model_dir", "export_dir", "data_dir", "manual_dir")
# Read by Ray Train's controller, which the driver's environment reaches. Preemption is a lost
# worker like any other (the run starts again at step 0 either way); printing through Ray Train's
# logger would show each worker line twice.
# kmnist uses Ray Train's v2 API whatever the environment says.
RAY_TRAIN_ENV = {
  "RAY_TRAIN_V2_ENABLED": "1",
  "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
  "RAY_TRAIN_ENABLE_PRINT_PATCH": "0",
}


def run(
  config: TrainConfig,
  log: Callable[[str], None] = print,
  progress=None,
  clock: Stopwatch | None = None,
) -> train.RunResult:
  """Trains `config` on --ray_workers Ray workers; returns worker 0's RunResult (model=None: the
  model stays with the workers, its exports are where worker 0 wrote them). `clock` gets worker 0's
  stages, and as "ray" the rest of the time Ray took (starting itself and the workers)."""
  clock = clock or Stopwatch()
  config = worker_config(config)
  address = config.ray_address or os.environ.get("RAY_ADDRESS")
  if address is None:
    # One machine: its workers share --data_dir, so the data is prepared once, here, first.
    with clock("data"):
      mnist.load(config.data_dir, config.manual_dir, log=log, progress=progress)
  start = time.perf_counter()
  connect(address, config)
  try:
    log(
      f"Ray: {config.ray_workers} workers, {'one GPU' if config.ray_use_gpu else 'one CPU'} each, "
      f"on {address or 'a local Ray on this machine'}; worker 0 writes {config.model_dir} and "
      f"{config.export_dir}"
    )
    result = trainer(config).fit().return_value
  except TrainingFailedError as e:
    raise KmnistError(failure_line(e, config.ray_workers)) from None
  finally:
    ray.shutdown()  # a local Ray stops with it; a cluster is only disconnected from
  stages = result.metrics.get("seconds", {})
  for stage, seconds in stages.items():
    clock.add(stage, seconds)
  clock.add("ray", time.perf_counter() - start - sum(stages.values()))
  return result


def worker_config(config: TrainConfig) -> TrainConfig:
  """What every worker runs: one worker of a multi_worker cluster, its paths absolute (Ray starts
  workers in a directory of its own)."""
  paths = {
    name: os.path.abspath(os.path.expanduser(getattr(config, name)))
    for name in PATH_FLAGS
    if getattr(config, name) is not None
  }
  return dataclasses.replace(config, strategy="multi_worker", **paths)


def connect(address: str | None, config: TrainConfig) -> None:
  """Joins the Ray cluster at `address`, or starts a local one with a CPU for every worker."""
  try:
    if address is None:
      ray.init(
        address="local",  # a Ray of this run's own, never one a `ray start` left running
        num_cpus=max(os.cpu_count() or 1, config.ray_workers),
        include_dashboard=False,
        logging_level=logging.ERROR,  # its notes on starting a cluster: this one stops with the run
      )
    else:
      ray.init(address=address)
  except (ConnectionError, RuntimeError, ValueError) as e:
    raise KmnistError(
      f"could not reach the Ray cluster at {address or 'this machine'} ({one_line(e)}); check "
      "--ray_address (or RAY_ADDRESS), or leave both unset to start a local Ray"
    ) from None
  gpus = ray.cluster_resources().get("GPU", 0)
  if address is None and config.ray_use_gpu and gpus < config.ray_workers:
    ray.shutdown()  # a local Ray has what it has: its workers would wait for GPUs forever
    raise KmnistError(
      f"--ray_use_gpu needs a GPU for each of the {config.ray_workers} workers and this "
      f"machine's Ray has {gpus:g}; drop --ray_use_gpu or name a cluster with --ray_address"
    )


def trainer(config: TrainConfig) -> TensorflowTrainer:
  """Ray Train's TensorflowTrainer: N workers spread over the nodes, none restarted."""
  os.environ.update(RAY_TRAIN_ENV)
  return TensorflowTrainer(
    worker_loop,
    # The driver's verbosity: kmnist-train shows TensorFlow's INFO lines only under -v 0.
    train_loop_config={"config": config, "verbosity": absl_logging.get_verbosity()},
    scaling_config=ScalingConfig(
      num_workers=config.ray_workers, use_gpu=config.ray_use_gpu, placement_strategy="SPREAD"
    ),
    run_config=RunConfig(
      failure_config=FailureConfig(max_failures=0),
      # Ray Train's own lines (a failure's traceback among them) stay in Ray's log files; the
      # driver says what failed, in one line.
      logging_config=LoggingConfig(log_level="CRITICAL"),
    ),
  )


def worker_loop(values: dict) -> train.RunResult | None:
  """One Ray worker: kmnist's multi-worker training, in the cluster Ray wrote into TF_CONFIG."""
  # Ray sets it for its own tf.keras (Keras 2) callbacks; kmnist is Keras 3 throughout.
  os.environ.pop("TF_USE_LEGACY_KERAS", None)
  absl_logging.set_verbosity(values["verbosity"])
  # Ray's worker sends Python's log records to the console too: TensorFlow's, at the same level.
  logging.getLogger("tensorflow").setLevel(
    absl_logging.converter.absl_to_standard(values["verbosity"])
  )
  context = train_fn_utils.get_context()
  print(
    f"Ray worker {context.get_world_rank()} of {context.get_world_size()}: pid {os.getpid()} on "
    f"{ray.util.get_node_ip_address()}",
    flush=True,
  )
  result = train.run(values["config"], log=print)
  return None if result.saved_model_dir is None else dataclasses.replace(result, model=None)


def failure_line(error: TrainingFailedError, workers: int) -> str:
  """The line a failed Ray run ends with: the worker that was lost (as Ray or a peer's TensorFlow
  noticed first), else a worker's own KmnistError (a bad flag, a full disk); anything else is not a
  fault kmnist knows, and is raised whole."""
  failures = sorted(getattr(error, "worker_failures", {}).items())
  for rank, failure in failures:
    if isinstance(failure, WorkerHealthCheckFailedError | ray.exceptions.RayActorError):
      pid = re.search(r"\bpid[=:] ?(\d+)", str(failure))
      ip = re.search(r"\bnode_ip='([^']+)'", str(failure))
      cause = type(getattr(failure, "health_check_failure", failure)).__name__
      where = f"pid {pid[1] if pid else '?'} on {ip[1] if ip else '?'}"
      return lost_worker_line(rank, workers, f"{where}: {cause}")
  for _, failure in failures:
    task = re.fullmatch(r"/job:worker/task:(\d+)", getattr(failure, "peer", None) or "")
    if (
      isinstance(failure, distribute.LostPeerError) and task
    ):  # Ray's rank i is TF_CONFIG's worker i
      return lost_worker_line(int(task[1]), workers, f"TensorFlow: {failure.cause}")
  for _, failure in failures:
    if isinstance(failure, KmnistError):
      return str(failure)
  if isinstance(error, ControllerError):
    return f"Ray Train could not run the workers ({one_line(error.controller_failure)})"
  raise error


def lost_worker_line(rank: int, workers: int, how: str) -> str:
  return (
    f"lost Ray worker {rank} of {workers} ({how}), so training cannot go on; run the same command "
    "again (a cluster run starts at step 0)"
  )
