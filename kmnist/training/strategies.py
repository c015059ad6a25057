"""The tf.distribute strategies by name, and the flags of a run's replicas and cluster (TF_CONFIG,
or Ray's workers) checked before TensorFlow starts.

No TensorFlow here (kmnist.training.distribute makes the strategies): the command checks
--strategy and the cluster description in a fraction of a second.
"""

import importlib.util
import json
import os

from kmnist.util.errors import KmnistError

NAMES = ("auto", "default", "one_device", "mirrored", "multi_worker", "tpu")
# Strategies that mirror over one machine's devices, so splitting the CPU gives them replicas to
# mirror over.
CPU_REPLICA_STRATEGIES = ("auto", "mirrored")
# The strategies a Ray worker may be asked for: each trains as one worker of Ray's cluster.
RAY_STRATEGIES = ("auto", "multi_worker")
RAY_EXTRA = "pip install 'kmnist[ray]'"


def check_flags(config) -> None:
  """Fails, naming the flag, unless --strategy, --cpu_replicas and the --ray_* flags of a
  TrainConfig fit together, and the cluster they name is described (TF_CONFIG) or can be started
  (the ray extra installed)."""
  if config.ray_workers < 0:
    raise KmnistError(f"--ray_workers={config.ray_workers} must be >= 0 (0: no Ray)")
  if not config.ray_workers:
    for flag in ("ray_address", "ray_use_gpu"):
      if getattr(config, flag):
        raise KmnistError(f"--{flag} needs --ray_workers=N, the number of Ray workers to train on")
  elif config.strategy not in RAY_STRATEGIES or config.cpu_replicas > 1:
    flag = "strategy" if config.strategy not in RAY_STRATEGIES else "cpu_replicas"
    raise KmnistError(
      f"--ray_workers trains each Ray worker as one worker of a multi_worker cluster (on its "
      f"GPUs or one CPU); drop --{flag}={getattr(config, flag)}"
    )
  elif importlib.util.find_spec("ray") is None:
    raise KmnistError(f"--ray_workers needs Ray, which is not installed here: {RAY_EXTRA}")
  if config.cpu_replicas > 1 and config.strategy not in CPU_REPLICA_STRATEGIES:
    raise KmnistError(
      f"--cpu_replicas={config.cpu_replicas} needs --strategy=mirrored or auto to have "
      f"replicas to run (--strategy={config.strategy} uses one CPU device per process); drop "
      "--cpu_replicas or change --strategy"
    )
  # The cluster is part of the run's configuration; Ray writes TF_CONFIG on the workers it starts.
  if config.strategy == "multi_worker" and not config.ray_workers:
    check_tf_config(os.environ.get("TF_CONFIG"))


def check_tf_config(tf_config: str | None) -> None:
  """Fails, naming the problem, unless TF_CONFIG places this worker in a cluster.

  TensorFlow's own errors for a bad TF_CONFIG are tracebacks deep in the cluster resolver, or a
  silent hang. An unset TF_CONFIG is refused too: TensorFlow would run a cluster of one, and a
  TF_CONFIG forgotten on N machines would make N separate runs that each write outputs as the chief.
  """
  example = (
    'e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}\''
  )
  if not tf_config:
    raise KmnistError(
      "--strategy=multi_worker needs TF_CONFIG, naming the cluster and this worker's place in "
      f"it, and it is not set: set it on every worker ({example}), or use --strategy=auto to "
      "train on this machine alone"
    )
  try:
    parsed = json.loads(tf_config)
    cluster, task = parsed["cluster"], parsed["task"]
    task_type, index = task["type"], task["index"]
    hosts = cluster[task_type]
  except (ValueError, KeyError, TypeError) as e:
    raise KmnistError(
      f"TF_CONFIG is not a valid cluster description ({type(e).__name__}: {e}); {example}"
    ) from None
  if not isinstance(index, int) or not 0 <= index < len(hosts):
    raise KmnistError(
      f"TF_CONFIG task index {index!r} is outside the {len(hosts)} {task_type!r} addresses of "
      f"its cluster; number the workers 0..{len(hosts) - 1}"
    )
