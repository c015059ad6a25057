"""Acceptance on the real data (slow): README's clients, pointed at kmnist-serve serving the
reference export, classify all 10,000 MNIST test digits exactly as the SavedModel does in process.

    python -m pytest -s -m slow tests/test_serve_acceptance.py
"""

import concurrent.futures
import time

import numpy as np
import pytest
from serve_clients import readme_grpc_client, readme_rest_client

from benchmarks.serve_load import ServerProcess, http_json
from kmnist.cli.serve import default_model_base
from kmnist.export import saved_model


@pytest.fixture(scope="module")
def server():
  with ServerProcess(default_model_base()) as process:
    yield process


@pytest.fixture(scope="module")
def in_process(real_datasets):
  """The reference SavedModel's own answers, loaded in this process (no server)."""
  return saved_model.predict_saved_model(default_model_base() / "1", real_datasets.test.images)


@pytest.mark.slow
def test_readme_rest_example_agrees_on_all_10000_test_digits(server, real_datasets, in_process):
  images = real_datasets.test.images
  start = time.perf_counter()
  with concurrent.futures.ThreadPoolExecutor(4) as pool:  # four users running README's code
    served = np.array(list(pool.map(lambda d: readme_rest_client(server.url, d), images)))
  seconds = time.perf_counter() - start
  agreement = float(np.mean(served == in_process["class_id"]))
  accuracy = float(np.mean(served == real_datasets.test.labels))
  print(
    f"\nREST, one digit per request: {len(images)} digits in {seconds:.1f} s, agreement with "
    f"the SavedModel in process {agreement:.2%}, test accuracy {accuracy:.4f}"
  )
  assert len(served) == 10_000 and agreement == 1.0


@pytest.mark.slow
def test_grpc_and_open_inference_agree_too(server, real_datasets, in_process):
  images = real_datasets.test.images
  grpc_classes = np.concatenate(
    [
      readme_grpc_client(server.grpc_port, images[i : i + 1000])
      for i in range(0, len(images), 1000)
    ]
  )
  np.testing.assert_array_equal(grpc_classes, in_process["class_id"])
  v2 = []
  for i in range(0, len(images), 1000):
    batch = images[i : i + 1000]
    status, reply = http_json(
      f"{server.url}/v2/models/kmnist/infer",
      {
        "inputs": [
          {
            "name": "image",
            "shape": list(batch.shape),
            "datatype": "UINT8",
            "data": batch.ravel().tolist(),
          }
        ]
      },
    )
    assert status == 200
    v2 += next(o["data"] for o in reply["outputs"] if o["name"] == "class_id")
  np.testing.assert_array_equal(v2, in_process["class_id"])
  _, rows = http_json(
    f"{server.url}/v1/models/kmnist:predict",
    {
      "signature_name": "serving_float",
      "inputs": {"x": (images[:1000].reshape(1000, -1) / 255.0).tolist()},
    },
  )
  np.testing.assert_array_equal(rows["outputs"]["class_id"], in_process["class_id"][:1000])
