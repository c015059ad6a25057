"""Locust clients for kmnist-serve's load test; `benchmarks.serve_load.run_locust` runs it headless.

Each user posts TF Serving REST :predict requests of KMNIST_LOAD_BATCH real digits back to back
(no think time), checks every answer (HTTP 200, one prediction per digit) and records its latency.
The records go to KMNIST_LOAD_OUT as JSON when locust stops, at --run-time or after
KMNIST_LOAD_MAX_REQUESTS requests, whichever comes first.
"""

import json
import os

import numpy as np
from locust import FastHttpUser, constant, events, task

DIGITS = np.load(os.environ["KMNIST_LOAD_DIGITS"])  # uint8 [N, 28, 28]
BATCH = int(os.environ.get("KMNIST_LOAD_BATCH", "1"))
MAX_REQUESTS = int(os.environ.get("KMNIST_LOAD_MAX_REQUESTS", "0"))
MODEL = os.environ.get("KMNIST_LOAD_MODEL", "kmnist")
OUT = os.environ["KMNIST_LOAD_OUT"]
# Bodies are made once, so the clients spend their time on HTTP, not on JSON encoding.
BODIES = [
  json.dumps(
    {"signature_name": "serving_default", "instances": DIGITS[i : i + BATCH].tolist()}
  ).encode()
  for i in range(0, len(DIGITS) - BATCH + 1, BATCH)
][:200]
RECORDS = []  # (start time s, latency ms, ok, error)


@events.request.add_listener
def record(response_time, exception, start_time=None, context=None, **kwargs):
  RECORDS.append(
    (
      start_time,
      response_time,
      exception is None,
      None if exception is None else str(exception)[:200],
    )
  )


@events.quitting.add_listener
def write_records(environment, **kwargs):
  with open(OUT, "w") as f:
    json.dump({"batch": BATCH, "records": RECORDS}, f)


class Predict(FastHttpUser):
  wait_time = constant(0)

  def on_start(self):
    self.next_body = hash(id(self)) % len(BODIES)

  @task
  def predict(self):
    if MAX_REQUESTS and len(RECORDS) >= MAX_REQUESTS:
      self.environment.runner.quit()
      return
    body = BODIES[self.next_body]
    self.next_body = (self.next_body + 1) % len(BODIES)
    with self.client.post(
      f"/v1/models/{MODEL}:predict",
      data=body,
      name=f"predict x{BATCH}",
      headers={"Content-Type": "application/json"},
      catch_response=True,
    ) as response:
      if response.status_code != 200:
        response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
      elif len(response.json().get("predictions", ())) != BATCH:
        response.failure(f"expected {BATCH} predictions: {response.text[:200]}")
