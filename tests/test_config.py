"""Flag parsing and validation: bad values stop with one line naming the flag, before any data is touched."""

import os
import subprocess
import sys

import pytest
from absl import flags

from kmnist import train
from kmnist.config import TrainConfig
from kmnist.errors import KmnistError


def parse(argv) -> TrainConfig:
  fv = flags.FlagValues()
  train.define_flags(fv)
  fv(["kmnist-train"] + argv)
  return train.config_from_flags(fv)


def test_defaults_are_the_tutorials_schedule():
  config = parse([])
  assert (config.steps, config.batch_size, config.learning_rate, config.seed) == (1000, 100, 0.5, 0)
  assert config == TrainConfig()


def test_pictures_are_on_by_default_and_novisualize_turns_them_off():
  assert parse([]).visualize is True
  assert parse(["--novisualize"]).visualize is False
def test_tflite_flag_picks_variants_in_order():
  assert parse([]).tflite == ("float", "dynamic", "int8")
  assert parse(["--tflite=int8,float"]).tflite == ("int8", "float")


def test_flagfile_sets_flags(tmp_path):
  flagfile = tmp_path / "run.flags"
  flagfile.write_text("--steps=200\n--learning_rate=0.1\n--strategy=mirrored\n")
  config = parse([f"--flagfile={flagfile}"])
  assert (config.steps, config.learning_rate, config.strategy) == (200, 0.1, "mirrored")


@pytest.mark.parametrize("overrides, flag", [
    (dict(steps=0), "--steps=0"),
    (dict(steps=-5), "--steps=-5"),
    (dict(batch_size=0), "--batch_size=0"),
    (dict(learning_rate=0.0), "--learning_rate=0.0"),
    (dict(learning_rate=-0.5), "--learning_rate=-0.5"),
    (dict(learning_rate=float("nan")), "--learning_rate=nan"),
    (dict(strategy="tpu9"), "--strategy=tpu9"),
    (dict(eval_every=300), "--eval_every=300"),
    (dict(steps_per_execution=0), "--steps_per_execution=0"),
    (dict(export_version=0), "--export_version=0"),
    (dict(seed=-1), "--seed=-1"),
    (dict(tflite=("float", "int4")), "--tflite=float,int4: 'int4' is not a TFLite variant"),
    (dict(tflite=()), "--tflite= names no TFLite variant"),
    (dict(tflite=("int8", "int8")), "--tflite=int8,int8 names a variant twice"),
    (dict(cpu_replicas=0), "--cpu_replicas=0 must be a positive integer"),
    (dict(cpu_replicas=2, strategy="default"), "--cpu_replicas=2 needs --strategy=mirrored or auto"),
    (dict(cpu_replicas=2, strategy="multi_worker"), "--cpu_replicas=2 needs --strategy=mirrored or auto"),
])
def test_invalid_values_name_the_flag(overrides, flag):
  with pytest.raises(KmnistError, match=flag):
    TrainConfig(**overrides).validate()


def test_strategies_and_cpu_replicas_parse():
  config = parse(["--strategy=mirrored", "--cpu_replicas=2"])
  assert (config.strategy, config.cpu_replicas) == ("mirrored", 2)
  assert parse(["--strategy=multi_worker"]).strategy == "multi_worker"
  assert parse([]).cpu_replicas == 1


def run_cli(*args, timeout=60, env=None):
  return subprocess.run([sys.executable, "-m", "kmnist.train", *args], capture_output=True, text=True,
                        timeout=timeout, env=env)


@pytest.mark.parametrize("arg, expected", [
    ("--steps=0", "--steps=0 must be a positive integer"),
    ("--learning_rate=-1", "--learning_rate=-1.0 must be a positive"),
    ("--batch_size=0", "--batch_size=0 must be a positive integer"),
    ("--strategy=tpu9", "flag --strategy=tpu9: value should be one of"),
    ("--no_such_flag=1", "Unknown command line flag 'no_such_flag'"),
    ("--tflite=float,fp16", "--tflite=float,fp16: 'fp16' is not a TFLite variant; use a comma-separated list of"),
])
def test_cli_rejects_bad_flags_before_touching_data(tmp_path, arg, expected):
  data_dir, model_dir, export_dir = tmp_path / "data", tmp_path / "run", tmp_path / "exported"
  result = run_cli(arg, f"--data_dir={data_dir}", f"--model_dir={model_dir}", f"--export_dir={export_dir}")
  assert result.returncode != 0
  assert expected in result.stderr
  assert "Traceback" not in result.stderr
  assert not data_dir.exists() and not model_dir.exists() and not export_dir.exists()


@pytest.mark.parametrize("tf_config, strategy, expected", [
    ('{"cluster": {"worker": ["127.0.0.1:1"]}', "multi_worker", "TF_CONFIG is not a valid cluster description"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 1}}', "multi_worker",
     "TF_CONFIG task index 1 is outside the 1 'worker' addresses"),
    ("", "tpu", "--strategy=tpu: no TPU is reachable from this machine"),
])
def test_cli_refuses_a_cluster_it_cannot_join_before_touching_data(tmp_path, tf_config, strategy, expected):
  env = dict(os.environ, TF_CONFIG=tf_config)
  env.pop("TPU_NAME", None)
  data_dir, model_dir, export_dir = tmp_path / "data", tmp_path / "run", tmp_path / "exported"
  result = run_cli(f"--strategy={strategy}", f"--data_dir={data_dir}", f"--model_dir={model_dir}",
                   f"--export_dir={export_dir}", env=env)
  assert result.returncode == 2
  assert f"kmnist-train: error: {expected}" in result.stderr
  assert "Traceback" not in result.stderr
  assert not data_dir.exists() and not model_dir.exists() and not export_dir.exists()


def test_batch_not_divisible_by_replicas_is_refused_before_data(tmp_path):
  class ThreeReplicas:
    num_replicas_in_sync = 3

  config = TrainConfig(data_dir=str(tmp_path / "data"), model_dir=str(tmp_path / "run"))
  with pytest.raises(KmnistError, match="--batch_size=100 is the global batch and must be divisible by the 3"):
    train.run(config, strategy_override=ThreeReplicas())
  assert not (tmp_path / "data").exists()


def test_helpfull_lists_the_flags():
  result = run_cli("--helpfull")  # absl exits 1 after printing help; the text is what matters.
  for name in ("--steps", "--batch_size", "--learning_rate", "--strategy", "--data_dir", "--manual_dir",
               "--export_dir", "--tflite", "--flagfile"):
    assert name in result.stdout
