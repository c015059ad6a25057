"""What an MNIST example is, and where the prepared data lives by default.

No TensorFlow and no TFDS here: the models, the metrics, the exports and the commands' checks all
need these values, and none of them should pay for loading tensorflow-datasets to get them.
"""

import os

NUM_CLASSES = 10  # the digits 0-9; class i is digit i
IMAGE_SHAPE = (28, 28)  # uint8 pixels 0-255, white digit on black
DEFAULT_DATA_DIR = os.path.join("~", "tensorflow_datasets")  # TFDS's own default
TFDS_VERSION = (
  "3.0.1"  # the TFDS `mnist` version kmnist prepares, pinned: the same bytes everywhere
)
