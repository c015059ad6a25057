"""The page's "on this device" mode, in Debian's Chromium as a phone (390x844, touch): digits drawn
with a finger are answered in the page by the int8 bundle (LiteRT.js) as the server answers them,
from the same picture as the server prepares it; with the server killed, the page comes back from
its service worker and still answers. Also the server side of the mode (kmnist.serve.web.on_device).

    KMNIST_SERVE_PHONE_SCREENSHOT=docs/assets/serve_phone.png \
      python -m pytest tests/test_serve_device.py
keeps the phone-size screenshot (the kmnist-serve guide's picture).
"""

import os
import signal
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import sync_playwright  # noqa: I001 (after the browser module's skip)
from test_serve_browser import CHROMIUM, CHROMIUM_FLAGS, arc

from benchmarks.serve_load import ServerProcess, http_json
from kmnist.predict.model_paths import reference_export

PHONE = {
  "viewport": {"width": 390, "height": 844},
  "device_scale_factor": 3,
  "is_mobile": True,
  "has_touch": True,
  "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
  "Chrome/150.0.0.0 Mobile Safari/537.36",
}
# Ten digits as a finger draws them on the 280x280 pad, each drawn twice: as it is, and smaller in
# a corner (the page must centre it as MNIST's digits are).
STROKES = {
  0: [arc(140, 140, 60, 95, -90, 270)],
  1: [[(150, 40), (140, 240)]],
  2: [arc(140, 95, 55, 50, 200, 380, 12) + [(85, 240), (200, 240)]],
  3: [arc(135, 90, 55, 45, 200, 450, 12) + arc(135, 185, 60, 50, -90, 160, 12)],
  4: [[(170, 240), (170, 40), (70, 170), (220, 170)]],
  5: [[(200, 45), (95, 45), (90, 130)] + arc(140, 175, 60, 55, -120, 150, 14)],
  6: [[(190, 45), (120, 110), (90, 190)] + arc(140, 190, 50, 45, 180, 540, 16)],
  7: [[(70, 50), (210, 50), (120, 240)]],
  8: [arc(140, 90, 45, 45, 90, 450, 16) + arc(140, 190, 55, 50, -90, 270, 16)],
  9: [arc(140, 95, 50, 45, 0, 360, 16) + [(190, 95), (180, 240)]],
}


# One server for the module, in file order on one worker: the last test kills it.
# A real server (and Chromium for the phone): end to end, in the slow suite.
pytestmark = [pytest.mark.xdist_group("serve_device"), pytest.mark.slow]


@pytest.fixture(scope="module")
def served():
  with ServerProcess(reference_export() / "saved_model", "--grpc_port=0") as server:
    yield server


def test_the_served_versions_bundle_and_the_service_worker_are_served(served):
  url = f"{served.url}/v1/models/kmnist/tflite/kmnist_int8_classifier.tflite"
  with urllib.request.urlopen(url) as reply:
    assert reply.headers["X-Model-Version"] == "1"
    body = reply.read()
  shipped = reference_export() / "tflite" / "1" / "kmnist_int8_classifier.tflite"
  assert body == shipped.read_bytes()
  with urllib.request.urlopen(f"{served.url}/sw.js") as reply:
    assert reply.headers["Content-Type"].startswith("text/javascript")
  status, reply = http_json(f"{served.url}/v1/models/kmnist/tflite/model.bin")
  assert status == 404 and "model.bin is not a kmnist TFLite file" in reply["error"]


def drawings():
  for digit, strokes in STROKES.items():
    yield digit, [[(40 + 0.55 * x, 30 + 0.55 * y) for x, y in stroke] for stroke in strokes]
    yield digit, strokes


def canvas_pixels(page, selector) -> np.ndarray:
  data = page.evaluate(
    f"Array.from(document.querySelector('{selector}').getContext('2d')"
    ".getImageData(0, 0, 28, 28).data)"
  )
  return np.array(data).reshape(28, 28, 4)[..., 0].astype(int)


def touch(page, cdp, strokes):
  """Draws with a finger: real touch input (CDP Input.dispatchTouchEvent), one event a point (the
  page joins them with straight strokes)."""
  box = page.locator("#pad").bounding_box()
  for stroke in strokes:
    points = [{"x": box["x"] + x, "y": box["y"] + y} for x, y in stroke]
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": points[:1]})
    for point in points[1:]:
      cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def draw_and_wait(page, cdp, strokes, server_too=True):
  # A click (page.tap's sometimes never came right after a drawn stroke: synthetic touches).
  page.click("#clear")
  assert "prediction" not in page.evaluate("({...document.body.dataset})")
  page.locator("#pad").scroll_into_view_if_needed()
  touch(page, cdp, strokes)
  wanted = ["devicePrediction", *(["prediction"] if server_too else [])]
  page.wait_for_function(
    " && ".join(f"document.body.dataset.{key} !== undefined" for key in wanted), timeout=20_000
  )
  return page.evaluate("({...document.body.dataset})")


def test_a_phone_gets_the_servers_answers_on_the_device_and_offline(served):
  server = served
  with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
    try:
      context = browser.new_context(**PHONE, service_workers="allow")
      elsewhere = []  # nothing may come from outside this server

      def only_the_server(route):
        if route.request.url.startswith(server.url + "/"):
          return route.continue_()
        elsewhere.append(route.request.url)
        return route.abort()

      context.route("**/*", only_the_server)
      page = context.new_page()
      cdp = context.new_cdp_session(page)
      page.goto(server.url + "/")
      page.check("#on-device")
      page.wait_for_function("document.body.dataset.deviceReady === '1'", timeout=60_000)
      answers, differences, times = [], [], []
      for digit, strokes in drawings():
        shown = draw_and_wait(page, cdp, strokes)
        answers.append((digit, int(shown["prediction"]), int(shown["devicePrediction"])))
        times.append([float(shown[key]) for key in ("deviceMs", "deviceModelMs", "networkMs")])
        differences.append(
          np.abs(canvas_pixels(page, "#input") - canvas_pixels(page, "#device-input")).mean()
        )
      print(f"\n(digit, server, device): {answers}")
      print(f"mean |server - page| preparation per pixel: max {max(differences):.3f} gray levels")
      device, model, network = np.median(times, axis=0)
      print(
        f"per digit, medians: {device:.1f} ms on the device (the model {model:.2f} ms), "
        f"{network:.1f} ms over the network"
      )
      assert len(answers) >= 20
      assert [server_said for _, server_said, _ in answers] == [here for *_, here in answers]
      assert np.mean([digit == here for digit, _, here in answers]) >= 0.8
      assert max(differences) <= 2
      assert "ms over the network" in page.text_content("#answer")
      assert "ms on this device (the model" in page.text_content("#device-answer")
      assert np.all(np.array(times) > 0)
      keep = os.environ.get("KMNIST_SERVE_PHONE_SCREENSHOT")
      if keep:
        Path(keep).write_bytes(page.screenshot(full_page=True, scale="css"))

      server.process.send_signal(
        signal.SIGKILL
      )  # the server is gone: the page comes from its worker
      server.process.wait()
      page.reload()
      page.wait_for_function("document.body.dataset.deviceReady === '1'", timeout=30_000)
      offline = draw_and_wait(page, cdp, STROKES[7], server_too=False)
      assert offline["devicePrediction"] == "7"
      page.wait_for_function("document.getElementById('answer').className.includes('error')")
      assert elsewhere == []
    finally:
      browser.close()
