"""The drawing page's server side: its static files, and a drawing made into the model's input.

The page sends the canvas as a PNG. It is decoded and prepared by the same functions as
kmnist-predict's picture files, `kmnist.predict.images.decode_picture` (transparent pixels are
paper, then grayscale) and `to_mnist` (dark-on-light inverted, the digit fitted into 20x20 and
centred by its centre of mass in 28x28). tests/test_serve_page.py holds both paths to the same
pixels.
"""

import io
from pathlib import Path

import numpy as np

from kmnist.predict.images import decode_picture, to_mnist
from kmnist.serve.repository.servable import BadRequest
from kmnist.util.errors import KmnistError

STATIC_DIR = Path(__file__).resolve().parent / "static"


def prepare_picture(data: bytes) -> np.ndarray:
  """A drawing's PNG bytes -> the 28x28 uint8 digit the model receives, white on black."""
  try:
    return to_mnist(decode_picture(io.BytesIO(data), "the drawing"), "the drawing")
  except KmnistError as e:
    raise BadRequest(str(e)) from None
