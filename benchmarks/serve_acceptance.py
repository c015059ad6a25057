"""README's clients against kmnist-serve on all 10,000 MNIST test digits: `python -m
benchmarks.serve_acceptance` (about a minute).

kmnist-serve serves the reference export on 127.0.0.1; README's REST client classifies every test
digit one request at a time (four clients at once), README's gRPC client and Open Inference in
batches of 1,000, and `serving_float` the first 1,000 as columns. Each must agree with the
SavedModel run in this process on every digit. Prints the figures; exits 1 on any disagreement.
"""

import concurrent.futures
import time

import numpy as np
from absl import app, flags, logging

from benchmarks.readme_clients import readme_grpc_client, readme_rest_client
from benchmarks.serve_load import ServerProcess, http_json
from kmnist.cli.serve import default_model_base
from kmnist.data import mnist
from kmnist.data.spec import DEFAULT_DATA_DIR
from kmnist.export import saved_model

flags.DEFINE_string("data_dir", DEFAULT_DATA_DIR, "TFDS data directory (prepared if needed).")


def open_inference(url: str, images: np.ndarray) -> list:
  classes = []
  for i in range(0, len(images), 1000):
    batch = images[i : i + 1000]
    tensor = {"name": "image", "shape": list(batch.shape), "datatype": "UINT8"}
    status, reply = http_json(
      f"{url}/v2/models/kmnist/infer", {"inputs": [{**tensor, "data": batch.ravel().tolist()}]}
    )
    assert status == 200, reply
    classes += next(o["data"] for o in reply["outputs"] if o["name"] == "class_id")
  return classes


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # TFDS's and TensorFlow's INFO lines
  test = mnist.load(flags.FLAGS.data_dir).test
  expected = saved_model.predict_saved_model(default_model_base() / "1", test.images)["class_id"]
  with ServerProcess(default_model_base()) as server:
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # four users running README's code
      rest = np.array(list(pool.map(lambda d: readme_rest_client(server.url, d), test.images)))
    rest_seconds = time.perf_counter() - start
    grpc = np.concatenate(
      [
        readme_grpc_client(server.grpc_port, test.images[i : i + 1000])
        for i in range(0, 10_000, 1000)
      ]
    )
    v2 = np.array(open_inference(server.url, test.images))
    flat = (test.images[:1000].reshape(1000, -1) / 255.0).tolist()
    _, columns = http_json(
      f"{server.url}/v1/models/kmnist:predict",
      {"signature_name": "serving_float", "inputs": {"x": flat}},
    )
  results = {
    "README's REST client, one digit per request": rest,
    "README's gRPC client, batches of 1,000": grpc,
    "Open Inference REST, batches of 1,000": v2,
    "serving_float, columnar, first 1,000": np.array(columns["outputs"]["class_id"]),
  }
  print(f"REST: {len(rest):,} requests in {rest_seconds:.1f} s (4 clients)")
  agreed = True
  for name, classes in results.items():
    agreement = float(np.mean(classes == expected[: len(classes)]))
    accuracy = float(np.mean(classes == test.labels[: len(classes)]))
    agreed &= agreement == 1.0
    print(
      f"{name}: agreement with the SavedModel in process {agreement:.2%}, accuracy {accuracy:.4f}"
    )
  return 0 if agreed else 1


if __name__ == "__main__":
  app.run(main)
