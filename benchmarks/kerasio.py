"""The keras-io `mnist_convnet` recipe, as published, for the side-by-side in `benchmarks.models`.

conv32 - pool - conv64 - pool - flatten - dropout(0.5) - dense(10, softmax), 34,826 parameters; Adam
(1e-3), batch 128, 15 epochs, `validation_split=0.1` on the 60,000 training images (here the same
60,000 in TFDS's order: kmnist's train and validation splits).
"""

import keras
import numpy as np

EPOCHS, BATCH = 15, 128


def build() -> keras.Model:
  return keras.Sequential(
    [
      keras.Input(shape=(28, 28, 1)),
      keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
      keras.layers.MaxPooling2D(pool_size=(2, 2)),
      keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
      keras.layers.MaxPooling2D(pool_size=(2, 2)),
      keras.layers.Flatten(),
      keras.layers.Dropout(0.5),
      keras.layers.Dense(10, activation="softmax"),
    ]
  )


def train(datasets, seed: int, callbacks, epochs: int = EPOCHS) -> keras.Model:
  """Trains the recipe on the 60,000 training images, calling `callbacks` (the benchmark's
  clock)."""
  keras.utils.set_random_seed(seed)
  images = np.concatenate([datasets.train.images, datasets.validation.images])
  labels = np.concatenate([datasets.train.labels, datasets.validation.labels])
  model = build()
  model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
  model.fit(
    images[..., None].astype("float32") / 255,
    keras.utils.to_categorical(labels, 10),
    batch_size=BATCH,
    epochs=epochs,
    validation_split=0.1,
    callbacks=callbacks,
    verbose=0,
  )
  return model
