"""`kmnist-train --model=cnn`, the whole command, against keras-io's convnet training to 99.2 %.

Part of `python -m benchmarks`. Turn about, one seed at a time, so that both meet the same load:
keras-io's recipe trained in this process, its clock scoring the test set as it goes
(benchmarks/models.py), then the CNN's whole command as a user runs it (training, every export and
its check, the pictures, Python and TensorFlow starting). keras-io's time to 99.2 % is its training
seconds when it first scores 99.2 %; a seed that never gets there counts its whole training, which
is less than its time to 99.2 % would be, so the ratio is then an upper bound of the true one.
"""

import statistics

from benchmarks import models


def measure(datasets, data_dir: str, seeds) -> dict:
  """keras-io's time to the target and the CNN's whole command, seed by seed, turn about."""
  rounds = []
  for seed in seeds:
    kerasio = models.run_kerasio(datasets, seed)
    reached = kerasio["seconds_to"][str(models.TARGET)]
    rounds.append(
      {
        "seed": seed,
        "kerasio_seconds_to_target": reached,
        "kerasio_training_seconds": kerasio["training_seconds"],
        "kerasio_test_accuracy": kerasio["test_accuracy"],
        "cnn_command_seconds": models.whole_command("cnn", data_dir),
      }
    )
  return {"target": models.TARGET, "rounds": rounds, "ratio": ratio(rounds)}


def kerasio_seconds(round_: dict) -> float:
  """keras-io's time to the target, or its whole training where it never got there."""
  reached = round_["kerasio_seconds_to_target"]
  return reached if reached is not None else round_["kerasio_training_seconds"]


def ratio(rounds: list) -> float:
  """The CNN's command over keras-io's time to the target, medians of the rounds."""
  cnn = statistics.median(r["cnn_command_seconds"] for r in rounds)
  return cnn / statistics.median(kerasio_seconds(r) for r in rounds)


def table(figures: dict) -> str:
  target = f"{100 * figures['target']:.1f} %"
  rows = [
    f"| seed | keras-io: s to {target} (test accuracy at the end) | `kmnist-train --model=cnn`: "
    "whole command s |",
    "| ---: | ---: | ---: |",
  ]
  for r in figures["rounds"]:
    reached = r["kerasio_seconds_to_target"]
    kerasio = (
      f"{reached:.0f}"
      if reached is not None
      else f"not reached ({kerasio_seconds(r):.0f} s trained)"
    )
    rows.append(
      f"| {r['seed']} | {kerasio} ({r['kerasio_test_accuracy']:.4f}) | "
      f"{r['cnn_command_seconds']:.0f} |"
    )
  rows.append(
    f"\nThe CNN's whole command / keras-io's training to {target} (medians): "
    f"**{figures['ratio']:.2f}x**. Where keras-io never reached {target}, its whole training is "
    "counted: less than its time to get there, so the ratio is then an upper bound."
  )
  return "\n".join(rows)
