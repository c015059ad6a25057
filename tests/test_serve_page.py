"""kmnist.serve.web.page: a drawing becomes exactly what kmnist-predict makes of the same picture
file, and the page's files need nothing from outside the server."""

import io
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from kmnist.predict import images
from kmnist.serve.repository.servable import BadRequest
from kmnist.serve.web import page


def drawing(mode: str) -> Image.Image:
  """A '7' as the page draws it (black strokes on white 280x280), in several picture modes."""
  if mode == "RGBA transparent":
    picture = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(picture).line([(70, 50), (210, 50), (120, 240)], fill=(0, 0, 0, 255), width=20)
    return picture
  picture = Image.new("RGB", (280, 280), "white")
  ImageDraw.Draw(picture).line([(70, 50), (210, 50), (120, 240)], fill="black", width=20)
  if mode == "L":
    return picture.convert("L")
  if mode == "P":
    return picture.convert("P")
  if mode == "small white on black":
    return Image.fromarray(255 - np.asarray(picture.convert("L").resize((28, 28))))
  return picture


@pytest.mark.parametrize("mode", ["RGB", "RGBA transparent", "L", "P", "small white on black"])
def test_the_page_prepares_a_picture_exactly_as_kmnist_predict(tmp_path, mode):
  picture = drawing(mode)
  path = tmp_path / "digit.png"
  picture.save(path)
  from_file = images.load_png(path)
  from_page = page.prepare_picture(path.read_bytes())
  assert from_page.dtype == np.uint8 and from_page.shape == (28, 28)
  np.testing.assert_array_equal(from_page, from_file)
  assert from_page.max() > 200 and from_page[0].max() == 0  # white digit, black border


def png(picture: Image.Image) -> bytes:
  buffer = io.BytesIO()
  picture.save(buffer, format="PNG")
  return buffer.getvalue()


@pytest.mark.parametrize(
  "data, message",
  [
    (png(Image.new("RGB", (280, 280), "white")), "the drawing: the picture is blank"),
    (png(Image.new("L", (4, 4))), "the drawing: 4x4 pixels is too small"),
    (
      b"not a png",
      r"the drawing: not a readable image \(UnidentifiedImageError\); give a PNG",
    ),
    (
      png(Image.new("1", (5000, 5000))),
      "the drawing: the picture is 5000x5000 pixels; give at most",
    ),
  ],
)
def test_bad_drawings_get_one_reason(data, message):
  with pytest.raises(BadRequest, match=message):
    page.prepare_picture(data)


def test_the_page_uses_only_its_own_files():
  html = (page.STATIC_DIR / "index.html").read_text()
  references = set(re.findall(r'(?:src|href)="([^"]+)"', html)) - {"data:,"}  # no icon
  references |= set(re.findall(r'"(/static/vendor/[^"]+)"', html))  # the import map's
  assert references == {
    "/static/style.css",
    "/static/app.js",
    "/static/compare.js",
    "/static/device.js",
    "/static/vendor/litertjs/wasm-utils.js",
  }
  for reference in references:
    assert (page.STATIC_DIR / reference.removeprefix("/static/")).is_file()
  # The on-device mode's own files (device.py; LiteRT.js is checked in the browser, which sees
  # every request: tests/test_serve_device.py).
  for name in (
    "index.html",
    "app.js",
    "style.css",
    "compare.js",
    "device.js",
    "prepare.js",
    "sw.js",
  ):
    text = (page.STATIC_DIR / name).read_text()
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import|url\(", text), name
  script = (page.STATIC_DIR / "app.js").read_text()
  assert set(re.findall(r'(?:fetch|postJson)\("([^"]*)"', script)) == {
    "/v1/models",
    "/v1/models/",
    "/demo/prepare",
  }


@settings(max_examples=100)
@given(data=st.binary(max_size=400), magic=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"GIF89a"]))
def test_any_bytes_as_a_drawing_are_a_digit_or_one_bad_request(data, magic):
  try:
    digit = page.prepare_picture(magic + data)
  except BadRequest as e:
    assert str(e).startswith("the drawing: ") and "\n" not in str(e)
    return
  assert digit.dtype == np.uint8 and digit.shape == (28, 28)
