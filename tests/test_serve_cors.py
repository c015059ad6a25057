"""kmnist.serve.web.cors: preflight and actual requests answered as the Fetch standard's CORS
protocol asks, for the listed origins only (the app in process; Chromium's own check is in
test_serve_compare.py)."""

import pytest
from fastapi.testclient import TestClient
from kserve.model_repository import ModelRepository
from kserve.protocol.dataplane import DataPlane

from kmnist.serve.web import app as app_lib

SITE = "https://digits.example"
PREDICT = "/v1/models/kmnist:predict"


def client_for(*origins) -> TestClient:
  app = app_lib.create_app(
    DataPlane(model_registry=ModelRepository()), None, cors_allowed_origins=origins
  )
  return TestClient(app)


@pytest.fixture(scope="module")
def client():
  with client_for(SITE, "http://127.0.0.1:8000") as client:
    yield client


def preflight(client, origin, method="POST", headers="content-type"):
  return client.options(
    PREDICT,
    headers={
      "Origin": origin,
      "Access-Control-Request-Method": method,
      "Access-Control-Request-Headers": headers,
    },
  )


def test_a_preflight_from_an_allowed_origin(client):
  reply = preflight(client, SITE)
  assert reply.status_code == 200  # an ok status: the browser goes on with the request
  assert reply.headers["access-control-allow-origin"] == SITE
  assert "Origin" in reply.headers["vary"]
  assert {"GET", "POST"} <= set(reply.headers["access-control-allow-methods"].split(", "))
  allowed = reply.headers["access-control-allow-headers"].lower().split(", ")
  assert {"content-type", "inference-header-content-length"} <= set(allowed)
  assert int(reply.headers["access-control-max-age"]) > 0
  assert "access-control-allow-credentials" not in reply.headers


@pytest.mark.parametrize(
  "origin, method, headers, words",
  [
    ("https://evil.example", "POST", "content-type", "origin https://evil.example is not one of"),
    (SITE, "DELETE", "content-type", "method DELETE is not one of GET, POST"),
    (SITE, "POST", "x-secret", "headers 'x-secret' are not all of"),
  ],
)
def test_a_refused_preflight_is_one_line_without_cors_headers(
  client, origin, method, headers, words
):
  reply = preflight(client, origin, method, headers)
  assert reply.status_code == 403 and list(reply.json()) == ["error"]
  assert reply.json()["error"].startswith("CORS preflight refused: ") and words in reply.text
  assert reply.headers.get("access-control-allow-origin") in (None, SITE)
  if origin != SITE:
    assert "access-control-allow-origin" not in reply.headers


def test_actual_requests_get_the_origin_back_only_when_allowed(client):
  allowed = client.get("/v2/health/live", headers={"Origin": SITE})
  assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == SITE
  assert "Origin" in allowed.headers["vary"]  # caches must keep answers per origin apart
  error = client.post(PREDICT, json={"instances": []}, headers={"Origin": SITE})
  assert error.status_code == 404 and error.headers["access-control-allow-origin"] == SITE
  other = client.get("/v2/health/live", headers={"Origin": "https://evil.example"})
  assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
  assert "access-control-allow-origin" not in client.get("/v2/health/live").headers
  not_a_preflight = client.options(PREDICT, headers={"Origin": SITE})  # no -Request-Method
  assert not_a_preflight.status_code == 405 and list(not_a_preflight.json()) == ["error"]


def test_any_origin_and_off_by_default():
  with client_for("*") as anyone:
    reply = preflight(anyone, "https://anyone.example")
    assert reply.status_code == 200 and reply.headers["access-control-allow-origin"] == "*"
    simple = anyone.get("/v2/health/live", headers={"Origin": "https://anyone.example"})
    assert simple.headers["access-control-allow-origin"] == "*"
  with client_for() as default:
    assert preflight(default, SITE).status_code == 405  # no CORS: OPTIONS is no route
    simple = default.get("/v2/health/live", headers={"Origin": SITE})
    assert "access-control-allow-origin" not in simple.headers
