"""kmnist-visualize: which export a call draws, and bad input named in one line; a real run
redrawn (slow)."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from kmnist.cli import visualize as visualize_cli
from kmnist.export import saved_model
from kmnist.util.errors import KmnistError
from kmnist.visualize import pictures

from png_checks import read_rgb


@pytest.fixture(scope="module")
def exports(tmp_path_factory, trained_model):
  base = tmp_path_factory.mktemp("exported") / "saved_model"
  return [saved_model.export_saved_model(trained_model, base) for _ in range(2)]


def test_the_default_export_is_the_runs_own(tmp_path, exports):
  metrics_path = tmp_path / "metrics.json"
  metrics_path.write_text(json.dumps({"saved_model_dir": str(exports[0])}))
  run_metrics = visualize_cli.read_run_metrics(metrics_path)
  assert visualize_cli.resolve_export(None, run_metrics, metrics_path) == exports[0]
  assert visualize_cli.resolve_export(str(exports[0]), run_metrics, metrics_path) == exports[0]
  with pytest.raises(
    KmnistError,
    match=re.escape(f"belongs to the export {exports[0]}, not {exports[1]}; pass --model_dir="),
  ):
    visualize_cli.resolve_export(str(exports[1]), run_metrics, metrics_path)
  assert (
    visualize_cli.resolve_export(str(exports[1]), {}, tmp_path / "other" / "metrics.json")
    == exports[1]
  )


def test_nothing_to_draw_and_broken_metrics_are_named(tmp_path):
  with pytest.raises(
    KmnistError, match="metrics.json does not exist or names no export; train first"
  ):
    visualize_cli.resolve_export(None, {}, tmp_path / "metrics.json")
  with pytest.raises(KmnistError, match="nowhere is not a SavedModel version directory"):
    visualize_cli.resolve_export(str(tmp_path / "nowhere"), {}, tmp_path / "metrics.json")
  (tmp_path / "metrics.json").write_text("{not json")
  with pytest.raises(KmnistError, match="metrics.json is not valid JSON"):
    visualize_cli.read_run_metrics(tmp_path / "metrics.json")


def run_cli(*args, cwd=None, timeout=300):
  return subprocess.run(
    [sys.executable, "-m", "kmnist.cli.visualize", *args],
    cwd=cwd,
    capture_output=True,
    text=True,
    timeout=timeout,
  )


@pytest.mark.parametrize(
  "args, expected",
  [
    (
      [],
      "runs/kmnist/metrics.json does not exist or names no export; train first (kmnist-train)",
    ),
    (
      ["--export=exported/saved_model/9"],
      "exported/saved_model/9 is not a SavedModel version directory",
    ),
    (["--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"),
  ],
)
def test_bad_input_is_named_in_one_line(tmp_path, args, expected):
  result = run_cli(*args, cwd=tmp_path)
  assert result.returncode != 0
  assert expected in result.stderr
  assert "Traceback" not in result.stderr
  assert list(tmp_path.iterdir()) == []


def test_helpfull_lists_the_flags():
  result = run_cli("--helpfull")
  for name in ("--export", "--model_dir", "--data_dir", "--manual_dir"):
    assert name in result.stdout


@pytest.mark.slow
def test_redraws_a_real_run_from_its_export(real_run, real_data_dir, tmp_path):
  # As a user would: the export of a default run, drawn into a directory of its own.
  result = run_cli(
    f"--export={real_run.saved_model_dir}",
    f"--model_dir={tmp_path / 'pics'}",
    f"--data_dir={real_data_dir}",
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Pictures:" in result.stdout
  metrics = json.loads((tmp_path / "pics" / "metrics.json").read_text())
  assert metrics["confusion_matrix"] == real_run.metrics["confusion_matrix"]
  assert metrics["test_accuracy"] == pytest.approx(real_run.metrics["test_accuracy"], abs=1e-6)
  for name in pictures.PICTURES:
    np.testing.assert_array_equal(
      read_rgb(tmp_path / "pics" / name), read_rgb(real_run.pictures[name])
    )
