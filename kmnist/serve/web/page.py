"""The drawing page's server side: its static files, and a drawing made into the model's input.

The page sends the canvas as a PNG. It is decoded and prepared by the same functions as
kmnist-predict's picture files, `kmnist.predict.images.decode_picture` (transparent pixels are
paper, then grayscale) and `to_mnist` (dark-on-light inverted, the digit fitted into 20x20 and
centred by its centre of mass in 28x28). tests/test_serve_page.py holds both paths to the same
pixels.
"""

import functools
import hashlib
import io
import re
from pathlib import Path

import numpy as np
from fastapi import staticfiles
from fastapi.responses import HTMLResponse

from kmnist.predict.images import decode_picture, to_mnist
from kmnist.serve.repository.servable import BadRequest
from kmnist.util.errors import KmnistError

STATIC_DIR = Path(__file__).resolve().parent / "static"
# A static file asked for with ?v=<this kmnist's digest of them> never changes: browsers keep it.
IMMUTABLE = "public, max-age=31536000, immutable"


@functools.cache
def static_version() -> str:
  """A digest of the page's own files: a new kmnist's page asks for new URLs, never old scripts."""
  digest = hashlib.sha256()
  for path in sorted(STATIC_DIR.glob("*.*")):
    digest.update(path.name.encode() + path.read_bytes())
  return digest.hexdigest()[:12]


def index_response() -> HTMLResponse:
  """index.html, its own scripts and style asked for by versioned URLs; itself never cached."""
  html = (STATIC_DIR / "index.html").read_text()
  html = re.sub(r'"(/static/[\w.-]+\.(?:js|css))"', rf'"\1?v={static_version()}"', html)
  return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


class StaticFiles(staticfiles.StaticFiles):
  """/static/: immutable by a versioned URL (?v=...), revalidated (no-cache) otherwise."""

  async def get_response(self, path: str, scope):
    response = await super().get_response(path, scope)
    versioned = f"v={static_version()}".encode() in scope.get("query_string", b"")
    response.headers["Cache-Control"] = IMMUTABLE if versioned else "no-cache"
    return response


def prepare_picture(data: bytes) -> np.ndarray:
  """A drawing's PNG bytes -> the 28x28 uint8 digit the model receives, white on black."""
  try:
    return to_mnist(decode_picture(io.BytesIO(data), "the drawing"), "the drawing")
  except KmnistError as e:
    raise BadRequest(str(e)) from None
