"""kmnist.serve.repository.batching: TF Serving's batch scheduler semantics, with a stand-in model,
then the served model in process: the same answers batched, and a full queue answered 503 at
once."""

import asyncio
import concurrent.futures
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from kserve.model_repository import ModelRepository
from kserve.protocol.dataplane import DataPlane

from kmnist.export import saved_model
from kmnist.serve import model as serve_model
from kmnist.serve import server as server_lib
from kmnist.serve.protocols import tf_serving_grpc
from kmnist.serve.repository import batching, versions
from kmnist.serve.repository.batching_parameters import Parameters
from kmnist.serve.repository.servable import BadRequest
from kmnist.serve.web import app as app_lib


class Model:
  """Doubles its input; records each batch it ran; can be held up."""

  def __init__(self):
    self.batches = []
    self.gate = threading.Event()
    self.gate.set()
    self.entered = threading.Event()

  def __call__(self, array):
    self.entered.set()
    self.gate.wait(30)
    self.batches.append(array.copy())
    return {"twice": array * 2, "rows": np.arange(len(array))}


async def gather(batcher, model, arrays, key="a"):
  return await asyncio.gather(*(batcher.run(key, model, a, "m") for a in arrays))


def batcher_with(**parameters):
  return batching.Batcher(Parameters(**{"num_batch_threads": 1, **parameters}))


def test_concurrent_requests_run_as_one_batch_and_get_their_own_rows():
  model, batcher = Model(), batcher_with(max_batch_size=64)
  model.gate.clear()  # the first request's batch waits, so the others queue behind it
  arrays = [np.full((n, 3), i) for i, n in enumerate([1, 2, 1, 3, 1])]

  async def run():
    first = asyncio.ensure_future(batcher.run("a", model, arrays[0], "m"))
    await asyncio.to_thread(model.entered.wait, 10)
    rest = asyncio.ensure_future(gather(batcher, model, arrays[1:]))
    await asyncio.sleep(0.05)
    model.gate.set()
    return [await first, *(await rest)]

  results = asyncio.run(run())
  assert [len(b) for b in model.batches] == [1, 7]  # the four waiting ones ran together
  for array, result in zip(arrays, results, strict=True):
    np.testing.assert_array_equal(result["twice"], array * 2)
  assert [r["rows"].tolist() for r in results[1:]] == [[0, 1], [2], [3, 4, 5], [6]]
  batcher.stop()


def test_only_one_key_per_batch_and_the_batch_size_limit():
  model, batcher = Model(), batcher_with(max_batch_size=4)
  model.gate.clear()

  async def run():
    blocker = asyncio.ensure_future(batcher.run("c", model, np.zeros((1, 1)), "m"))
    await asyncio.to_thread(model.entered.wait, 10)
    a = asyncio.ensure_future(gather(batcher, model, [np.ones((2, 1))] * 3, key="a"))
    b = asyncio.ensure_future(gather(batcher, model, [np.ones((1, 1))] * 2, key="b"))
    await asyncio.sleep(0.05)
    model.gate.set()
    return await blocker, await a, await b

  asyncio.run(run())
  assert sorted(len(b) for b in model.batches) == [1, 2, 2, 4]  # a: 2+2 then 2; b: 1+1
  with pytest.raises(BadRequest, match="Task size 5 is larger than maximum input batch size 4"):
    asyncio.run(gather(batcher, model, [np.ones((5, 1))]))
  batcher.stop()


def test_a_full_queue_is_refused_at_once():
  """At once: while the batch ahead is still held up (no timing bound: the order is the proof)."""
  model, batcher = Model(), batcher_with(max_batch_size=2, max_enqueued_batches=1)
  model.gate.clear()

  async def run():
    running = asyncio.ensure_future(batcher.run("a", model, np.zeros((2, 1)), "m"))
    await asyncio.to_thread(model.entered.wait, 10)  # taken by the thread, which is held up
    waiting = asyncio.ensure_future(batcher.run("a", model, np.zeros((2, 1)), "m"))  # fills it
    await asyncio.sleep(0.01)
    with pytest.raises(batching.QueueFullError, match="queue to which this task was submitted"):
      await batcher.run("a", model, np.zeros((1, 1)), "m")
    held_up = not running.done() and not waiting.done()  # refused before anything moved
    model.gate.set()
    await running, await waiting
    return held_up

  assert asyncio.run(run())
  batcher.stop()


def test_a_batch_that_fails_outside_the_model_fails_its_requests_and_the_worker_lives():
  """Two requests of one key whose shapes cannot be concatenated: the batch itself fails (not the
  model); each request gets the error, and the worker thread answers the next request."""
  model, batcher = Model(), batcher_with(max_batch_size=8, batch_timeout_micros=200_000)

  async def run():
    both = await asyncio.gather(
      batcher.run("a", model, np.zeros((1, 2)), "m"),
      batcher.run("a", model, np.zeros((1, 3)), "m"),
      return_exceptions=True,
    )
    after = await batcher.run("a", model, np.ones((1, 2)), "m")
    return both, after

  both, after = asyncio.run(run())
  assert [type(e) for e in both] == [ValueError, ValueError]
  assert set(after) == {"twice", "rows"} and all(t.is_alive() for t in batcher._threads)
  batcher.stop()


def test_timeout_padding_and_errors():
  model, batcher = (
    Model(),
    batcher_with(max_batch_size=8, batch_timeout_micros=100_000, allowed_batch_sizes=(4, 8)),
  )
  start = time.monotonic()
  (result,) = asyncio.run(gather(batcher, model, [np.arange(3).reshape(3, 1)]))
  assert time.monotonic() - start >= 0.1  # a lone request waits for others up to the timeout
  assert model.batches[0].ravel().tolist() == [0, 1, 2, 0]  # padded to 4 with the first example
  np.testing.assert_array_equal(result["twice"].ravel(), [0, 2, 4])

  def broken(array):
    raise RuntimeError("the model failed")

  # Another key: a key's queue runs the function it was opened with (a servable's signature), and
  # the first key's may still be open while the worker thread comes round.
  with pytest.raises(RuntimeError, match="the model failed"):
    asyncio.run(gather(batcher, broken, [np.zeros((1, 1))], key="b"))
  batcher.stop()


# --- The served cnn in process, batching on: TF Serving's REST API over kmnist's app. ---


@pytest.fixture(scope="module")
def served(tmp_path_factory, trained_models):
  base = tmp_path_factory.mktemp("batching") / "cnn"
  saved_model.export_saved_model(trained_models["cnn"], base)
  manager = versions.VersionManager(base, tf_serving_grpc.load_and_warm_up, poll_seconds=0)
  manager.load_initial()
  return manager


def app_client(manager, **parameters) -> TestClient:
  batcher = batcher_with(**parameters)
  repository = ModelRepository()
  repository.update(serve_model.KmnistModel("cnn", manager, batcher=batcher))
  dataplane = DataPlane(model_registry=repository)
  return TestClient(app_lib.create_app(dataplane, server_lib.FollowBaseRepository(repository)))


def test_batched_answers_are_the_unbatched_ones(served, synthetic_datasets):
  digits = synthetic_datasets.test.images[:60]
  requests = [digits[i : i + n] for i, n in zip(range(0, 60, 3), [1, 2, 3] * 7, strict=False)]
  servable = served.current
  alone = [servable.run(servable.signature(None), r) for r in requests]  # as without batching
  with app_client(served, max_batch_size=32, batch_timeout_micros=50_000) as client:
    before = batch_sizes()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
      replies = list(
        pool.map(
          lambda r: client.post("/v1/models/cnn:predict", json={"instances": r.tolist()}), requests
        )
      )
  after = batch_sizes()
  for reply, expected in zip(replies, alone, strict=True):
    assert reply.status_code == 200
    predictions = reply.json()["predictions"]
    assert [p["class_id"] for p in predictions] == expected["class_id"].tolist()
    # A batch runs other matrix kernels than one digit alone: float rounding, 1e-6 at most.
    np.testing.assert_allclose(
      [p["probabilities"] for p in predictions], expected["probabilities"], rtol=0, atol=1e-5
    )
  batches, examples = after[0] - before[0], after[1] - before[1]
  assert examples == sum(len(r) for r in requests) and batches < len(requests)  # batched


def test_a_full_queue_is_503_at_once_and_the_next_requests_are_answered(served, monkeypatch):
  servable = served.current
  gate, entered, run = threading.Event(), threading.Event(), servable.run

  def held_up(signature, array):
    entered.set()
    gate.wait(30)
    return run(signature, array)

  monkeypatch.setattr(servable, "run", held_up)
  body = {"instances": np.zeros((2, 28, 28), np.uint8).tolist()}
  with (
    app_client(served, max_batch_size=2, max_enqueued_batches=1) as client,
    concurrent.futures.ThreadPoolExecutor(2) as pool,
  ):
    running = pool.submit(client.post, "/v1/models/cnn:predict", json=body)
    assert entered.wait(30)
    waiting = pool.submit(client.post, "/v1/models/cnn:predict", json=body)  # fills the queue
    time.sleep(0.2)
    refused = client.post("/v1/models/cnn:predict", json={"instances": body["instances"][:1]})
    assert refused.status_code == 503 and not running.done()  # at once: the batch is held up
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"].startswith(
      "The batch scheduling queue to which this task was submitted is full"
    )
    gate.set()
    assert running.result().status_code == 200 and waiting.result().status_code == 200


def batch_sizes() -> tuple[float, float]:
  """(batches run, examples in them) of the cnn, from the batch size histogram."""
  samples = {
    s.name: s.value
    for s in batching.BATCH_SIZE.collect()[0].samples
    if s.labels == {"model": "cnn"}
  }
  return samples.get("kmnist_batch_size_count", 0), samples.get("kmnist_batch_size_sum", 0)
