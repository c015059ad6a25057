"""Request batching (--enable_batching): concurrent requests to one model run as one batch.

TF Serving's SharedBatchScheduler, as tensorflow/core/kernels/batching_util describes it: one queue
per served version and signature, a pool of `num_batch_threads` threads shared by all queues (taken
round-robin). A queue is a list of batches whose last one is open: a request's examples join the
open batch if they fit in `max_batch_size`, else that batch is closed and a new one opened; if the
queue already holds `max_enqueued_batches` batches, the request is refused at once with
UNAVAILABLE (HTTP 503), as TF Serving does. A free thread takes the oldest closed batch, or the open
one once it is full or its first request has waited `batch_timeout_micros`. The batch's inputs are
concatenated, run through the signature once (padded to the next of `allowed_batch_sizes`, if
given, with copies of its first example) and the outputs split back to the requests.

Why a scheduler of kmnist's own rather than a library's: TF Serving's is C++ inside its model
server (not a Python package); kserve's Python server has none (KServe batches in its Go agent,
a sidecar outside this process); TensorFlow's in-graph BatchFunction would need every SavedModel
exported again; Ray Serve's @serve.batch brings a cluster runtime. A few hundred lines give TF
Serving's semantics exactly: its parameters file, its queue refusal, its padding.
"""

import asyncio
import collections
import dataclasses
import logging
import threading
import time

import numpy as np

from kmnist.serve.operations.metrics import BATCH_SIZE, QUEUE_DEPTH
from kmnist.serve.repository.batching_parameters import Parameters
from kmnist.serve.repository.servable import BadRequest

logger = logging.getLogger("kmnist.serve")


class QueueFullError(Exception):
  """The batch queue is full: TF Serving's UNAVAILABLE (HTTP 503); the client may retry."""


@dataclasses.dataclass
class _Task:
  array: np.ndarray
  loop: asyncio.AbstractEventLoop
  future: asyncio.Future


@dataclasses.dataclass
class _Batch:
  tasks: list = dataclasses.field(default_factory=list)
  size: int = 0
  opened: float = 0.0  # when its first task came (time.monotonic)


class _Queue:
  """The batches of one (servable, signature): the last one open."""

  def __init__(self, run, name: str):
    self.run = run  # runs a batch's input array, returns {output: array}
    self.name = name  # the model's, for the batch size histogram
    self.batches = collections.deque([_Batch()])


class Batcher:
  """The scheduler: `await batcher.run(key, run, array)` is `run(array)`, batched."""

  def __init__(self, parameters: Parameters):
    self.parameters = parameters
    self._queues: dict = {}  # key -> _Queue; a queue with nothing in it is dropped
    self._next = 0  # round-robin position
    self._ready = threading.Condition()
    self._stopped = False
    self._threads = [
      threading.Thread(target=self._work, name=f"{parameters.thread_pool_name}_{i}", daemon=True)
      for i in range(parameters.num_batch_threads)
    ]
    for thread in self._threads:
      thread.start()

  async def run(self, key, run, array: np.ndarray, name: str = "") -> dict:
    """`run(array)`'s outputs, computed in a batch with other requests of the same `key` (the
    servable and signature: only those run together) of model `name`."""
    loop = asyncio.get_running_loop()
    task = _Task(array, loop, loop.create_future())
    self.schedule(key, run, task, name)
    return await task.future

  def schedule(self, key, run, task: _Task, name: str = "") -> None:
    size, limit = len(task.array), self.parameters.max_batch_size
    if size > limit:  # TF Serving's words
      raise BadRequest(
        f"Task size {size} is larger than maximum input batch size {limit} (kmnist-serve's "
        "--batching_parameters_file max_batch_size); split the request"
      )
    with self._ready:
      queue = self._queues.get(key)
      if queue is None:
        queue = self._queues[key] = _Queue(run, name)
      open_batch = queue.batches[-1]
      if open_batch.size + size > limit:
        if len(queue.batches) >= self.parameters.max_enqueued_batches:
          raise QueueFullError(
            "The batch scheduling queue to which this task was submitted is full (max_enqueued_"
            f"batches={self.parameters.max_enqueued_batches} batches of up to {limit} "
            "examples wait already); retry, or raise max_enqueued_batches or num_batch_threads"
          )
        open_batch = _Batch()
        queue.batches.append(open_batch)
      if not open_batch.tasks:
        open_batch.opened = time.monotonic()
      open_batch.tasks.append(task)
      open_batch.size += size
      QUEUE_DEPTH.labels(name).inc(size)
      self._ready.notify()

  def stop(self) -> None:
    with self._ready:
      self._stopped = True
      self._ready.notify_all()

  def _take(self):
    """(queue, batch) for a free thread, or (None, seconds to wait); under the lock."""
    now, wait = time.monotonic(), None
    keys = list(self._queues)
    timeout = self.parameters.batch_timeout_micros / 1e6
    for i in range(len(keys)):
      key = keys[(self._next + i) % len(keys)]
      queue = self._queues[key]
      batch = queue.batches[0]
      if len(queue.batches) > 1:  # closed: the next one is open
        queue.batches.popleft()
      elif batch.tasks and (
        batch.size >= self.parameters.max_batch_size or now - batch.opened >= timeout
      ):
        queue.batches[0] = _Batch()
      else:
        if batch.tasks:
          left = batch.opened + timeout - now
          wait = left if wait is None else min(wait, left)
        else:
          del self._queues[key]  # nothing waits: drop it (and its hold on the servable)
        continue
      self._next = (self._next + i + 1) % max(len(keys), 1)
      return queue, batch
    return None, wait

  def _work(self) -> None:
    while True:
      with self._ready:
        while True:
          if self._stopped:
            return
          queue, batch = self._take()
          if queue is not None:
            break
          self._ready.wait(batch)
      try:
        QUEUE_DEPTH.labels(queue.name).dec(batch.size)
        BATCH_SIZE.labels(queue.name).observe(batch.size)
        self._process(queue.run, batch)
      except Exception as e:  # never die leaving requests waiting: each gets the error
        logger.exception("batch of %d requests to %s failed", len(batch.tasks), queue.name)
        for task in batch.tasks:
          task.loop.call_soon_threadsafe(_settle, task.future, None, e)

  def _process(self, run, batch: _Batch) -> None:
    arrays = [task.array for task in batch.tasks]
    inputs = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
    padded = next((n for n in self.parameters.allowed_batch_sizes if n >= len(inputs)), None)
    if padded is not None and padded > len(inputs):
      inputs = np.concatenate([inputs, np.repeat(inputs[:1], padded - len(inputs), axis=0)])
    try:
      outputs = run(inputs)
    except Exception as e:  # each request of the batch gets the error, as it would alone
      results = [(task.future, None, e) for task in batch.tasks]
    else:
      results, start = [], 0
      for task in batch.tasks:
        end = start + len(task.array)
        rows = {name: value[start:end] for name, value in outputs.items()}
        results.append((task.future, rows, None))
        start = end
    loops = {}  # one wake-up per event loop, not one per request
    for task, result in zip(batch.tasks, results, strict=True):
      loops.setdefault(task.loop, []).append(result)
    for loop, settled in loops.items():
      loop.call_soon_threadsafe(_settle_all, settled)


def _settle_all(results) -> None:
  for future, result, error in results:
    _settle(future, result, error)


def _settle(future: asyncio.Future, result, error) -> None:
  if future.cancelled():  # the client went away
    return
  if error is not None:
    future.set_exception(error)
  else:
    future.set_result(result)
