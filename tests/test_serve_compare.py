"""The drawing page with the model family served at once (softmax, mlp and cnn from one model
config file) in Chromium: each model's answer, ten probabilities, version and, for the softmax
regression, evidence map, side by side for the same drawing; and a page on another origin calling
the REST API through CORS. Reuses test_serve_browser.py's browser and drawing; one server.

    KMNIST_SERVE_COMPARE_SCREENSHOT=/tmp/compare.png python -m pytest tests/test_serve_compare.py
keeps a screenshot of the comparison."""

import http.server
import json
import os
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import sync_playwright
from test_serve_browser import CHROMIUM, CHROMIUM_FLAGS, DIGITS, draw_with_mouse

from benchmarks.serve_load import ServerProcess
from kmnist.export import record, saved_model
from kmnist.models import registry
from kmnist.predict.model_paths import reference_export

# Chromium and a real server with three models: end to end, in the slow suite.
pytestmark = pytest.mark.slow

CLIENT_PAGE = """<!doctype html><html><body><script>
async function ask(url, digit) {
  const response = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                                     body: JSON.stringify({instances: [digit]})});
  return (await response.json()).predictions[0].class_id;
}
</script></body></html>"""


def family_config(tmp, trained_models, synthetic_datasets) -> str:
  """softmax (the reference export), mlp and cnn (synthetic, two versions of the cnn) and the
  config file naming them, with the cnn's two versions labelled."""
  import shutil

  shutil.copytree(reference_export() / "saved_model", tmp / "softmax")
  for name, versions in (("mlp", 1), ("cnn", 2)):
    for _ in range(versions):
      saved_model.export_saved_model(
        trained_models[name],
        tmp / name,
        warmup_images=synthetic_datasets.test.images[:2],
        about=record.make(registry.get(name), training_flags={}),
      )
  return f"""model_config_list {{
  config {{ name: "softmax" base_path: "{tmp}/softmax" model_platform: "tensorflow" }}
  config {{ name: "mlp" base_path: "{tmp}/mlp" model_platform: "tensorflow" }}
  config {{
    name: "cnn" base_path: "{tmp}/cnn" model_platform: "tensorflow"
    model_version_policy {{ specific {{ versions: 1 versions: 2 }} }}
    version_labels {{ key: "stable" value: 1 }}
    version_labels {{ key: "canary" value: 2 }}
  }}
}}
"""


class ClientSite:
  """A page of another origin: http://127.0.0.1:<its own port>/, served from a thread."""

  def __enter__(self):
    class Handler(http.server.BaseHTTPRequestHandler):
      def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(CLIENT_PAGE.encode())

      def log_message(self, *args):
        pass

    self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    self.port = self.server.server_address[1]
    threading.Thread(target=self.server.serve_forever, daemon=True).start()
    return self

  def __exit__(self, *exc):
    self.server.shutdown()


@pytest.fixture(scope="module")
def site():
  with ClientSite() as client_site:
    yield client_site


@pytest.fixture(scope="module")
def server(tmp_path_factory, trained_models, synthetic_datasets, site):
  tmp = tmp_path_factory.mktemp("family")
  (tmp / "models.config").write_text(family_config(tmp, trained_models, synthetic_datasets))
  with ServerProcess(
    None,
    f"--model_config_file={tmp / 'models.config'}",
    f"--cors_allowed_origins=http://127.0.0.1:{site.port}",
    "--grpc_port=0",
  ) as process:
    yield process


@pytest.fixture(scope="module")
def browser(server):
  with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
    try:
      yield browser
    finally:
      browser.close()


def predict(server, model: str, pixels) -> dict:
  body = json.dumps({"instances": [pixels]}).encode()
  url = f"{server.url}/v1/models/{model}:predict"
  return json.load(urllib.request.urlopen(url, body, timeout=30))["predictions"][0]


def test_the_page_compares_the_three_models_side_by_side(browser, server):
  page = browser.new_page(viewport={"width": 1280, "height": 1200})
  page.goto(server.url + "/")
  page.wait_for_selector("#compare-cards li[data-model='cnn']", timeout=20_000)
  draw_with_mouse(page, DIGITS[7])
  page.wait_for_function("document.body.dataset.compared === '3'", timeout=20_000)
  pixels = (
    np.array(
      page.evaluate(
        "Array.from(document.getElementById('input').getContext('2d')"
        ".getImageData(0, 0, 28, 28).data)"
      )
    )
    .reshape(28, 28, 4)[..., 0]
    .tolist()
  )
  cards = page.locator("#compare-cards li.compare-card")
  assert cards.count() == 3
  for i, (name, version, has_evidence) in enumerate(
    [("softmax", "1", True), ("mlp", "1", False), ("cnn", "2", False)]
  ):
    card = cards.nth(i)
    expected = predict(server, name, pixels)  # the same drawing, asked directly
    assert card.get_attribute("data-model") == name
    assert card.get_attribute("data-version") == version  # the highest served answers
    assert card.get_attribute("data-prediction") == str(expected["class_id"])
    assert f"version {version}" in card.locator(".compare-answer").text_content()
    bars = card.locator(".bars li")
    assert bars.count() == 10
    shown = [float(bars.nth(d).get_attribute("aria-label").split()[1]) for d in range(10)]
    np.testing.assert_allclose(shown, np.array(expected["probabilities"]) * 100, atol=0.051)
    assert card.locator(".compare-evidence").is_visible() == has_evidence
  assert page.text_content("#prediction") == "7"  # the page's own answer, the first model's
  keep = os.environ.get("KMNIST_SERVE_COMPARE_SCREENSHOT")
  if keep:
    Path(keep).parent.mkdir(parents=True, exist_ok=True)
    Path(keep).write_bytes(page.screenshot(full_page=True))
  summary = page.text_content("#compare-summary")
  assert summary.startswith(("All 3 models say", "The models disagree: softmax 7"))
  page.keyboard.press("Escape")
  page.focus("#pad")
  page.keyboard.press("Escape")
  assert page.evaluate("document.body.dataset.compared") is None
  page.close()


def test_a_page_on_an_allowed_origin_calls_the_api_and_others_cannot(browser, server, site):
  digit = np.zeros((28, 28), np.uint8)
  digit[4:24, 13:16] = 255
  for origin, allowed in [
    (f"http://127.0.0.1:{site.port}", True),
    (f"http://localhost:{site.port}", False),  # the same page, another origin: not listed
  ]:
    page = browser.new_page()
    page.goto(origin + "/")
    for url in (
      f"{server.url}/v1/models/mlp:predict",
      f"{server.url}/v1/models/cnn/labels/stable:predict",
    ):
      answer = page.evaluate(
        "([url, digit]) => ask(url, digit).then(String, e => 'refused: ' + e.message)",
        [url, digit.tolist()],
      )
      if allowed:  # JSON bodies are not "simple": Chromium asked with a preflight first
        assert answer.isdigit(), answer
      else:
        assert answer == "refused: Failed to fetch", answer
    page.close()
  assert "CORS preflight refused: origin http://localhost" in server.log()
