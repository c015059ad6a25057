"""README is one screen that tells the truth: its size, its two commands, and what it shows each
command answering, held to real runs (kmnist-train's output: tests/test_cli_train.py)."""

import json
import os
import re
import subprocess
import sys
import urllib.request

import pytest
from doc_names import ROOT

from benchmarks.serve_load import ServerProcess
from kmnist.predict.model_paths import reference_export
from kmnist.visualize import pictures

README = (ROOT / "README.md").read_text()
MAX_README_BYTES, MAX_BUILD_NOTES_BYTES = 12 * 1024, 25 * 1024


def command(module: str, *args, cwd) -> subprocess.CompletedProcess:
  """A kmnist command run as README runs it, from `cwd`."""
  return subprocess.run(
    [sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True, timeout=300
  )


def block_after(text: str, command: str, language: str) -> str:
  """The ```language block that follows the code block running `command`."""
  after = text.split(command, 1)[1]
  return after.split(f"```{language}\n", 1)[1].split("\n```", 1)[0]


def test_readme_and_build_notes_keep_their_size():
  assert len(README.encode()) <= MAX_README_BYTES
  assert len((ROOT / "BUILD_NOTES.md").read_bytes()) <= MAX_BUILD_NOTES_BYTES


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second():
  first = README.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
  assert first == ['pip install -e ".[serve,test]" && kmnist-train', "python -m pytest"]
  assert "\npython -m pytest\n" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.slow  # a server and a prediction, as README shows them
def test_readme_shows_what_kmnist_predict_and_kmnist_serve_really_answer():
  predicted = command("kmnist.cli.predict", "docs/digits/7.png", cwd=ROOT)
  assert predicted.stdout.strip() == block_after(README, "kmnist-predict docs/digits/7.png", "text")
  body = (ROOT / "docs" / "digits" / "7.json").read_bytes()
  with ServerProcess(reference_export() / "saved_model") as server:
    reply = urllib.request.urlopen(f"{server.url}/v1/models/kmnist:predict", body).read().decode()
  assert reply == block_after(README, "-d @docs/digits/7.json", "json")


@pytest.mark.slow
def test_the_readme_command_on_a_fresh_data_dir(tmp_path):
  # README's run command, as a user types it on a fresh clone (its data dir pointed into the test's
  # folder): TFDS prepares MNIST from the shipped files behind one display, then the default run
  # trains, scores, exports and draws, and prints what README shows.
  result = command("kmnist.cli.train", "--data_dir=data", cwd=tmp_path)
  assert result.returncode == 0, result.stderr[-3000:]
  label = f"Preparing MNIST in {os.path.join('data', 'mnist', '3.0.1')} (first run only)"
  lines = result.stderr.splitlines()
  assert lines[0] == f"{label}..." and len(lines) == 2, result.stderr
  assert lines[1].startswith(f"{label}: done in ") and lines[1].endswith(
    "; later runs start at once"
  )
  assert "Downloading and preparing" not in result.stdout
  assert_readme_output_is(result.stdout)
  accuracy = float(result.stdout.split("test accuracy:")[1].split()[0])
  assert accuracy >= 0.905
  assert (tmp_path / "exported" / "saved_model" / "1" / "saved_model.pb").is_file()
  tflite_dir = tmp_path / "exported" / "tflite" / "1"
  for name in (
    "kmnist_float.tflite",
    "kmnist_dynamic.tflite",
    "kmnist_int8.tflite",
    "labels.txt",
    "tflite_report.json",
  ):
    assert (tflite_dir / name).is_file()
  assert (
    tflite_dir / "tflite_report.md"
  ).read_text() in result.stdout  # the report's table is printed too
  metrics = json.loads((tmp_path / "runs" / "kmnist" / "metrics.json").read_text())
  assert metrics["test_accuracy"] == pytest.approx(accuracy, abs=5e-5)
  assert {"import", "data", "training", "evaluation", "pictures"} <= set(metrics["seconds"])
  assert all((tmp_path / "runs" / "kmnist" / name).is_file() for name in pictures.PICTURES)
  assert "Pictures: runs/kmnist/weights.png" in result.stdout
  assert list((tmp_path / "runs" / "kmnist" / "logs" / "train").glob("events.out.tfevents.*"))


def masked(text: str) -> list[str]:
  """The lines of kmnist-train's output with every number (and its unit) as N: what must match."""
  number = r"\d[\d,.]*(?:e[-+]?\d+)?(?:µs|us|ms|s\b)?"
  return [re.sub(number, "N", line).rstrip() for line in text.strip().splitlines()]


def readme_output() -> str:
  """README's kmnist-train output, without its `$ kmnist-train` line."""
  block = README.split("<!-- generated: output -->\n```text\n", 1)[1].split("\n```", 1)[0]
  return block.split("\n", 1)[1]


def assert_readme_output_is(stdout: str) -> None:
  """README's output block is this run's output, numbers aside."""
  assert masked(stdout) == masked(readme_output())


def test_the_comparison_masks_numbers_only():
  run = "test accuracy: 0.9175  (1.5e-05, 33,816 B, 799us/step, 1ms/step, 12 s)\nSeconds: 4.3"
  again = "test accuracy: 0.9201  (2e-06, 1,080 B, 1ms/step, 3us/step, 9 s)\nSeconds: 12.0"
  assert masked(run) == masked(again)
  assert masked(run) != masked(run.replace("accuracy", "loss"))
