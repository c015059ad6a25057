"""The tf.distribute strategies by name, and TF_CONFIG checked before TensorFlow starts.

No TensorFlow here (kmnist.training.distribute makes the strategies): the command checks
--strategy and the cluster description in a fraction of a second.
"""

import json

from kmnist.util.errors import KmnistError

NAMES = ("auto", "default", "one_device", "mirrored", "multi_worker", "tpu")
# Strategies that mirror over one machine's devices, so splitting the CPU gives them replicas to
# mirror over.
CPU_REPLICA_STRATEGIES = ("auto", "mirrored")


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
