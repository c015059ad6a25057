"""A small convolutional network: three 3x3 convolutions with batch norm, pooling, global averaging.

    image 28x28 -> conv 32 (26x26) -> pool -> conv 64 (11x11) -> pool -> conv 128 (3x3)
      -> average -> logits

Valid (unpadded) convolutions and early pooling keep the compute low on a CPU (3.1 M multiply-adds
per image); batch norm lets Adam take a large learning rate, so a few epochs reach 99.4 %
(BUILD_NOTES.md, "Models"). Batch norm is synchronized across replicas: every replica normalises
with the statistics of the whole global batch, as one device would, so a run on several replicas
trains the single-device model.
"""

import keras

from kmnist.data import IMAGE_SHAPE, NUM_CLASSES

FILTERS = (32, 64, 128)


def conv_block(x, filters: int, name: str):
  # No bias: batch norm's offset replaces it.
  x = keras.layers.Conv2D(filters, 3, use_bias=False, kernel_initializer="he_normal", name=name)(x)
  x = keras.layers.BatchNormalization(synchronized=True, name=f"{name}_norm")(x)
  return keras.layers.ReLU(name=f"{name}_relu")(x)


def build() -> keras.Model:
  inputs = keras.Input(IMAGE_SHAPE, name="image")
  x = keras.layers.Reshape(IMAGE_SHAPE + (1,), name="channel")(inputs)
  x = conv_block(x, FILTERS[0], "conv1")
  x = keras.layers.MaxPooling2D(name="pool1")(x)
  x = conv_block(x, FILTERS[1], "conv2")
  x = keras.layers.MaxPooling2D(name="pool2")(x)
  x = conv_block(x, FILTERS[2], "conv3")
  x = keras.layers.GlobalAveragePooling2D(name="average")(x)
  outputs = keras.layers.Dense(NUM_CLASSES, name="logits")(x)
  return keras.Model(inputs, outputs, name="cnn")
