"""A small convolutional network: three 3x3 convolutions with batch norm, pooling, global averaging.

    image 28x28 -> conv 32 (26x26) -> pool (13x13) -> norm -> conv 64 (11x11) -> pool (5x5) -> norm
      -> conv 128 (3x3) -> norm -> average -> logits            (each norm followed by a ReLU)

Valid (unpadded) convolutions and early pooling keep the compute low on a CPU (3.1 M multiply-adds
per image), and normalising after the pooling, on a quarter of the values, makes an epoch faster
still; batch norm lets Adam take a large learning rate, so 5 epochs reach 99.5 % (BUILD_NOTES.md,
"Settings, data, models"). Its statistics follow the batches with momentum 0.9, not Keras's 0.99,
so that they are settled at the end of a run that short. Batch norm is synchronized across
replicas: every replica normalises with the statistics of the whole global batch, as one device
would, so a run on several replicas trains the single-device model.
"""

import keras

from kmnist.data.spec import IMAGE_SHAPE, NUM_CLASSES

FILTERS = (32, 64, 128)
NORM_MOMENTUM = 0.9


def norm_relu(x, name: str):
  x = keras.layers.BatchNormalization(
    momentum=NORM_MOMENTUM, synchronized=True, name=f"{name}_norm"
  )(x)
  return keras.layers.ReLU(name=f"{name}_relu")(x)


def conv(x, filters: int, name: str):
  # No bias: batch norm's offset replaces it.
  return keras.layers.Conv2D(filters, 3, use_bias=False, kernel_initializer="he_normal", name=name)(
    x
  )


def build() -> keras.Model:
  inputs = keras.Input(IMAGE_SHAPE, name="image")
  x = keras.layers.Reshape(IMAGE_SHAPE + (1,), name="channel")(inputs)
  x = norm_relu(keras.layers.MaxPooling2D(name="pool1")(conv(x, FILTERS[0], "conv1")), "conv1")
  x = norm_relu(keras.layers.MaxPooling2D(name="pool2")(conv(x, FILTERS[1], "conv2")), "conv2")
  x = norm_relu(conv(x, FILTERS[2], "conv3"), "conv3")
  x = keras.layers.GlobalAveragePooling2D(name="average")(x)
  outputs = keras.layers.Dense(NUM_CLASSES, name="logits")(x)
  return keras.Model(inputs, outputs, name="cnn")
