"""The loss, metric, optimizer and learning-rate schedule a TrainConfig asks for."""

import keras

from kmnist.training.config import TrainConfig


def learning_rate(config: TrainConfig):
  """--learning_rate, constant or on a cosine schedule (linear warmup, then cosine decay to 0)."""
  if config.lr_schedule == "constant":
    return config.learning_rate
  return keras.optimizers.schedules.CosineDecay(
    initial_learning_rate=0.0 if config.warmup_steps else config.learning_rate,
    decay_steps=config.steps - config.warmup_steps,
    warmup_target=config.learning_rate if config.warmup_steps else None,
    warmup_steps=config.warmup_steps,
  )


def optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
  if config.optimizer == "sgd":
    return keras.optimizers.SGD(learning_rate=learning_rate(config))
  return keras.optimizers.Adam(learning_rate=learning_rate(config))


def compile_model(
  model: keras.Model, config: TrainConfig, steps_per_execution: int = 1
) -> keras.Model:
  """Mean cross-entropy on logits (stable, unlike the tutorial's log(softmax)), the optimizer."""
  model.compile(
    optimizer=optimizer(config),
    loss=keras.losses.CategoricalCrossentropy(
      from_logits=True, label_smoothing=config.label_smoothing
    ),
    metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    steps_per_execution=steps_per_execution,
  )
  return model
