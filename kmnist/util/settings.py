"""A setting: a dataclass field that carries its flag's help and its simple checks.

kmnist.training.config declares every training setting this way, once; kmnist.cli.common makes a
flag from each field, and TrainConfig.validate applies the checks.
"""

import dataclasses


def setting(default, help_text, *, choices=None, per_model=False, positive=False, weights=False):
  """A TrainConfig field together with its flag's help and its simple checks.

  `choices` (a tuple, or a function giving one) makes an enum flag; `per_model`: left unset (None),
  the model's schedule decides; `positive`: a positive integer; `weights`: the value decides the
  trained weights, so a checkpoint is resumed only under the same value (every per-model one does).
  """
  metadata = dict(help=help_text, choices=choices, per_model=per_model, positive=positive)
  return dataclasses.field(default=default, metadata={**metadata, "weights": weights or per_model})


def choices_of(field: dataclasses.Field) -> tuple | None:
  choices = field.metadata.get("choices")
  return choices() if callable(choices) else choices
