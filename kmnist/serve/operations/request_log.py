"""Request logs: a sample of the requests to a model, one JSON object per line.

Sampled as TF Serving's `logging_config { sampling_config { sampling_rate } }` says (a model
config file's entry; --request_log_sampling_rate for --model): each request is logged with that
probability. Written to `log_collector_config { filename_prefix }` + ".jsonl" (--request_log_file).
A line: {"time", "model", "version", "api", "status", "latency_ms", "examples", "input_sha256"},
and "inputs" (the pixels) only with --request_log_inputs. No TensorFlow here.
"""

import dataclasses
import json
import random
import threading
import time
from pathlib import Path

FIELDS = ("time", "model", "version", "api", "status", "latency_ms", "examples", "input_sha256")


@dataclasses.dataclass(frozen=True)
class Logging:
  """Where and how often a model's requests are logged (a model entry's logging_config)."""

  path: Path
  sampling_rate: float
  inputs: bool = False


class RequestLog:
  """The open log files, by path; `write` decides by the model's sampling rate."""

  def __init__(self, random_fn=random.random):
    self._files: dict = {}
    self._lock = threading.Lock()
    self._random = random_fn
    self.written = 0

  def write(self, logging: Logging | None, call, status: str) -> bool:
    if logging is None or self._random() >= logging.sampling_rate:
      return False
    line = {
      "time": round(time.time(), 3),
      "model": call.model,
      "version": call.version,
      "api": call.api,
      "status": status,
      "latency_ms": round(call.seconds * 1000, 3),
      "examples": call.examples,
      "input_sha256": call.digest,
    }
    if logging.inputs and call.pixels is not None:
      line["inputs"] = call.pixels.tolist()
    text = json.dumps(line, separators=(",", ":")) + "\n"
    with self._lock:
      handle = self._files.get(logging.path)
      if handle is None:
        logging.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self._files[logging.path] = open(logging.path, "a", buffering=1)  # noqa: SIM115
      handle.write(text)
      self.written += 1
    return True

  def close(self) -> None:
    with self._lock:
      for handle in self._files.values():
        handle.close()
      self._files.clear()
