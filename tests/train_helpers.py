"""A short training configuration for tests that run `train.run` on the synthetic digits."""

from kmnist.training.config import TrainConfig


def small_config(tmp_path, **overrides) -> TrainConfig:
  """60 steps in 3 epochs, and the cheapest export that still shows the pipeline: the float
  TFLite model only, no pictures. Tests about the other variants or the pictures ask for them."""
  values = dict(
    steps=60,
    eval_every=20,
    steps_per_execution=10,
    batch_size=50,
    model_dir=str(tmp_path / "run"),
    export_dir=str(tmp_path / "exported"),
    tflite=("float",),
    visualize=False,
  )
  values.update(overrides)
  return TrainConfig(**values)
