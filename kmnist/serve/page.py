"""The drawing page's server side: its static files, and a drawing made into the model's input.

The page sends the canvas as a PNG. It is decoded the way kmnist-predict decodes a picture file
(transparent pixels are paper, then grayscale) and prepared by the same function,
`kmnist.images.to_mnist` (dark-on-light inverted, the digit fitted into 20x20 and centred by its
centre of mass in 28x28). tests/test_serve_page.py holds both paths to the same pixels.
"""

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from kmnist.errors import KmnistError
from kmnist.images import to_mnist
from kmnist.serve.servable import BadRequest

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_PICTURE_PIXELS = 4096 * 4096  # a drawing is a few hundred pixels wide: refuse bombs early


def decode_picture(data: bytes) -> np.ndarray:
  """PNG (or any Pillow-readable) bytes -> uint8 grayscale [H, W], as images.load_png reads."""
  try:
    with Image.open(io.BytesIO(data)) as image:
      if image.width * image.height > MAX_PICTURE_PIXELS:
        raise BadRequest(f"the picture is {image.width}x{image.height} pixels; send at most "
                         f"{MAX_PICTURE_PIXELS:,} pixels")
      image.load()
      if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Transparent pixels count as paper (white), as load_png does.
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
      return np.asarray(image.convert("L"), dtype=np.uint8)
  except (UnidentifiedImageError, OSError) as e:
    raise BadRequest(f"the body is not a readable image ({e.__class__.__name__}); send the "
                     f"drawing as a PNG") from None


def prepare_picture(data: bytes) -> np.ndarray:
  """A drawing's PNG bytes -> the 28x28 uint8 digit the model receives, white on black."""
  try:
    return to_mnist(decode_picture(data), "the drawing")
  except KmnistError as e:
    raise BadRequest(str(e)) from None
