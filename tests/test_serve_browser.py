"""The drawing page in a real browser: Debian's Chromium, driven by Playwright (which downloads
nothing: it is pointed at /usr/bin/chromium). Digits are drawn as strokes with the mouse and one
with a finger (touch events), the page's answer is read, and a screenshot is checked for what the
page must show. Without the browser this is skipped, saying why, except in CI (CI set), where it
fails instead.

    KMNIST_SERVE_SCREENSHOT=docs/assets/serve.png python -m pytest tests/test_serve_browser.py
also keeps the screenshot (the kmnist-serve guide's picture).
"""

import io
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.serve_load import ServerProcess
from kmnist.predict.model_paths import reference_export

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
]


def missing_browser() -> str | None:
  if not CHROMIUM.is_file():
    return f"{CHROMIUM} is not installed (as root: apt-get install chromium)"
  try:
    import playwright.sync_api  # noqa: F401
  except ImportError:
    return "Playwright is not installed (pip install -e '.[test]')"
  return None


if missing_browser():
  if os.environ.get("CI"):
    pytest.fail(f"the browser test must run in CI: {missing_browser()}", pytrace=False)
  pytest.skip(missing_browser(), allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402

# Chromium and a real server: end to end, in the slow suite (the page's parts in process:
# test_serve_page.py).
pytestmark = pytest.mark.slow


def arc(cx, cy, rx, ry, start, end, n=30):
  return [
    (cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
    for a in np.linspace(start, end, n + 1)
  ]


# Strokes on the 280x280 pad, each a polyline, as a person would draw the digit.
DIGITS = {
  0: [arc(140, 140, 60, 95, -90, 270)],
  1: [[(150, 40), (140, 240)]],
  7: [[(70, 50), (210, 50), (120, 240)]],
  4: [[(170, 240), (170, 40), (70, 170), (220, 170)]],
}
TOUCH_DIGIT = 4  # drawn with a finger


@pytest.fixture(scope="module")
def page():
  with (
    ServerProcess(reference_export() / "saved_model", "--grpc_port=0") as server,
    sync_playwright() as playwright,
  ):
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
    try:
      context = browser.new_context(viewport={"width": 1280, "height": 700}, has_touch=True)
      page = context.new_page()
      page.goto(server.url + "/")
      page.wait_for_function(
        "document.getElementById('model-info').textContent.includes('version 1')",
        timeout=20_000,
      )
      yield page
    finally:
      browser.close()


def draw_with_mouse(page, strokes):
  box = page.locator("#pad").bounding_box()
  for stroke in strokes:
    page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
    page.mouse.down()
    for x, y in stroke[1:]:
      page.mouse.move(box["x"] + x, box["y"] + y, steps=2)
    page.mouse.up()


def draw_with_finger(page, strokes):
  """Real touch input through the browser's input pipeline (CDP Input.dispatchTouchEvent)."""
  cdp = page.context.new_cdp_session(page)
  box = page.locator("#pad").bounding_box()
  for stroke in strokes:
    points = [(box["x"] + x, box["y"] + y) for x, y in stroke]
    dense = [
      tuple(np.add(a, np.multiply(np.subtract(b, a), t)))
      for a, b in zip(points, points[1:], strict=False)
      for t in np.linspace(0, 1, 6)[:-1]
    ] + [points[-1]]
    cdp.send(
      "Input.dispatchTouchEvent",
      {"type": "touchStart", "touchPoints": [{"x": dense[0][0], "y": dense[0][1]}]},
    )
    for x, y in dense[1:]:
      cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def ask(page, digit) -> int:
  page.click("#clear")
  assert page.get_attribute("body", "data-prediction") is None
  (draw_with_finger if digit == TOUCH_DIGIT else draw_with_mouse)(page, DIGITS[digit])
  page.wait_for_function("document.body.dataset.prediction !== undefined", timeout=20_000)
  return int(page.get_attribute("body", "data-prediction"))


def test_drawn_digits_are_recognised_and_the_page_shows_its_parts(page):
  answers = {digit: ask(page, digit) for digit in DIGITS}
  assert answers == {digit: digit for digit in DIGITS}
  last = list(DIGITS)[-1]
  assert page.text_content("#prediction") == str(last)
  assert f"The model says {last}" in page.text_content("#answer")
  assert page.locator("#bars li").count() == 10
  assert page.get_attribute("#bars li.top", "aria-label").startswith(f"{last}: ")
  assert page.text_content("#evidence-digit") == str(last)
  input_pixels = page.evaluate(
    "Array.from(document.getElementById('input').getContext('2d').getImageData(0, 0, 28, 28).data)"
  )
  grey = np.array(input_pixels).reshape(28, 28, 4)[..., 0]
  assert grey.max() > 200 and grey[0].max() == 0  # a white digit on black, margin kept

  shot = page.screenshot(full_page=True)
  picture = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(int)

  def region(selector):
    box = page.locator(selector).bounding_box()
    x, y, w, h = (round(box[k]) for k in ("x", "y", "width", "height"))
    return picture[y + 3 : y + h - 3, x + 3 : x + w - 3]  # inside the border

  pad, model_input = region("#pad"), region("#input")
  evidence, top_bar = region("#evidence"), region("#bars li.top .fill")
  assert (pad.sum(-1) < 100).mean() > 0.02 and (pad.sum(-1) > 740).mean() > 0.5  # ink on paper
  assert (model_input.min(-1) > 200).mean() > 0.03 and (model_input.max(-1) < 30).mean() > 0.5
  blue = (evidence[..., 2] - evidence[..., 0] > 60).mean()
  red = (evidence[..., 0] - evidence[..., 2] > 60).mean()
  assert blue > 0.01 and blue + red < 0.6  # evidence for the digit shows, on a pale field
  assert np.abs(top_bar.mean((0, 1)) - (0x1F, 0x5F, 0xBF)).max() < 30  # the answer's bar
  keep = os.environ.get("KMNIST_SERVE_SCREENSHOT")
  if keep:
    Path(keep).parent.mkdir(parents=True, exist_ok=True)
    Path(keep).write_bytes(shot)


def test_escape_or_clear_starts_over_from_the_keyboard(page):
  assert ask(page, 1) == 1
  page.focus("#pad")
  page.keyboard.press("Escape")
  assert page.get_attribute("body", "data-prediction") is None
  assert page.text_content("#answer") == "Draw a digit to see."
  assert (
    page.evaluate(
      "Math.max(...document.getElementById('input').getContext('2d')"
      ".getImageData(0, 0, 28, 28).data.filter((v, i) => i % 4 == 0))"
    )
    == 0
  )
  page.keyboard.press("Tab")  # from the pad to the Clear button
  assert page.evaluate("document.activeElement.id") == "clear"
