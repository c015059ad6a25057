"""TrainConfig: bad values and paths stop with one line naming the flag, before any data is
touched."""

import dataclasses
import importlib.util
import json
import re
import sys

import pytest

from kmnist.data import mnist_files
from kmnist.models import registry
from kmnist.training.config import TrainConfig
from kmnist.training.strategies import check_tf_config
from kmnist.util.errors import KmnistError


@pytest.mark.parametrize(
  "overrides, flag",
  [
    (dict(steps=0), "--steps=0"),
    (dict(steps=-5), "--steps=-5"),
    (dict(batch_size=0), "--batch_size=0"),
    (dict(learning_rate=0.0), "--learning_rate=0.0"),
    (dict(learning_rate=-0.5), "--learning_rate=-0.5"),
    (dict(learning_rate=float("nan")), "--learning_rate=nan"),
    (dict(strategy="tpu9"), "--strategy=tpu9 is not known"),
    (dict(eval_every=300), "--eval_every=300"),
    (dict(steps_per_execution=0), "--steps_per_execution=0"),
    (dict(export_version=0), "--export_version=0"),
    (dict(seed=-1), "--seed=-1"),
    (dict(tflite=("float", "int4")), "--tflite=float,int4: 'int4' is not a TFLite variant"),
    (dict(tflite=()), "--tflite= names no TFLite variant"),
    (dict(tflite=("int8", "int8")), "--tflite=int8,int8 names a variant twice"),
    (dict(cpu_replicas=0), "--cpu_replicas=0 must be a positive integer"),
    (
      dict(cpu_replicas=2, strategy="default"),
      "--cpu_replicas=2 needs --strategy=mirrored or auto",
    ),
    (
      dict(cpu_replicas=2, strategy="multi_worker"),
      "--cpu_replicas=2 needs --strategy=mirrored or auto",
    ),
    (dict(ray_workers=-1), r"--ray_workers=-1 must be >= 0 \(0: no Ray\)"),
    (dict(ray_address="auto"), "--ray_address needs --ray_workers=N, the number of Ray workers"),
    (dict(ray_use_gpu=True), "--ray_use_gpu needs --ray_workers=N"),
    (dict(ray_workers=2, strategy="mirrored"), "worker of a multi_worker .*; drop --strategy="),
    (dict(ray_workers=2, cpu_replicas=2), "drop --cpu_replicas=2"),
  ],
)
def test_invalid_values_name_the_flag(overrides, flag):
  with pytest.raises(KmnistError, match=flag):
    TrainConfig(**overrides).validate()


def test_ray_workers_need_the_ray_extra_and_no_tf_config(monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)  # Ray writes it on the workers it starts
  for strategy in ("auto", "multi_worker"):
    TrainConfig(ray_workers=2, strategy=strategy, ray_address="auto", ray_use_gpu=True).validate()
  monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
  with pytest.raises(
    KmnistError, match=r"^--ray_workers needs Ray, .*: pip install 'kmnist\[ray\]'$"
  ):
    TrainConfig(ray_workers=2).validate()


def test_mediapipe_check_needs_a_bundle_and_mediapipe(monkeypatch):
  with pytest.raises(KmnistError, match=re.escape("--tflite=float,int8 names none; add")):
    TrainConfig(mediapipe_check=True, tflite=("float", "int8")).validate()
  real_find_spec = importlib.util.find_spec
  monkeypatch.setattr(
    importlib.util, "find_spec", lambda name: None if name == "mediapipe" else real_find_spec(name)
  )
  with pytest.raises(KmnistError, match=re.escape("pip install 'kmnist[mobile]'")):
    TrainConfig(mediapipe_check=True).validate()
  TrainConfig().validate()  # off by default: the run needs no MediaPipe


def test_the_defaults_are_the_tutorials_schedule_and_valid():
  config = TrainConfig().validate()
  assert (config.steps, config.batch_size, config.learning_rate, config.seed) == (1000, 100, 0.5, 0)
  assert config.resume_values() == {
    "model": "softmax",
    "augment": False,
    "steps": 1000,
    "batch_size": 100,
    "optimizer": "sgd",
    "learning_rate": 0.5,
    "lr_schedule": "constant",
    "warmup_steps": 0,
    "label_smoothing": 0.0,
    "seed": 0,
    "eval_every": 1000,
  }


def in_tmp(tmp_path, **overrides) -> TrainConfig:
  paths = dict(
    data_dir=str(tmp_path / "data"),
    model_dir=str(tmp_path / "run"),
    export_dir=str(tmp_path / "exported"),
  )
  return TrainConfig(**{**paths, **overrides})


def test_check_paths_refuses_files_unwritable_dirs_and_taken_versions(tmp_path):
  a_file = tmp_path / "a_file"
  a_file.write_text("")
  (tmp_path / "exported" / "tflite" / "3").mkdir(parents=True)
  taken = tmp_path / "exported" / "tflite" / "3"
  cases = [
    (
      dict(model_dir=str(a_file)),
      f"--model_dir={a_file} cannot be a directory: {a_file} is a file",
    ),
    (
      dict(export_dir=str(a_file / "sub")),
      f"--export_dir={a_file / 'sub'} cannot be a directory",
    ),
    (
      dict(data_dir="/proc/1/kmnist"),
      "--data_dir=/proc/1/kmnist is not writable (",
    ),
    (
      dict(export_version=3),
      f"--export_version=3: {taken} already exists and is never overwritten",
    ),
  ]
  for overrides, message in cases:
    with pytest.raises(KmnistError) as error:
      in_tmp(tmp_path, **overrides).check_paths()
    assert message in str(error.value)
  assert sorted(p.name for p in tmp_path.iterdir()) == [
    "a_file",
    "exported",
  ]  # the checks wrote nothing


def test_check_paths_checks_a_manual_dir_even_when_the_data_is_prepared(tmp_path):
  with pytest.raises(
    KmnistError, match=f"MNIST file {tmp_path / mnist_files.MNIST_FILES[0]} is missing"
  ):
    in_tmp(tmp_path, manual_dir=str(tmp_path)).check_paths()
  assert in_tmp(tmp_path).check_paths().export_bases() == [
    tmp_path / "exported" / "saved_model",
    tmp_path / "exported" / "tflite",
  ]


def tf_config(index, workers=2, task_type="worker"):
  return json.dumps(
    {
      "cluster": {"worker": [f"127.0.0.1:{2000 + i}" for i in range(workers)]},
      "task": {"type": task_type, "index": index},
    }
  )


def test_tf_config_is_checked_before_tensorflow_sees_it():
  # Unset: refused, not TensorFlow's cluster of one (a TF_CONFIG forgotten on N machines would make
  # N separate runs, each writing as the chief).
  with pytest.raises(
    KmnistError, match="--strategy=multi_worker needs TF_CONFIG, .* and it is not set: set it on "
  ):
    check_tf_config(None)
  with pytest.raises(KmnistError, match="or use --strategy=auto to train on this machine alone"):
    check_tf_config("")
  check_tf_config(tf_config(1))
  with pytest.raises(
    KmnistError, match="TF_CONFIG is not a valid cluster description .* e.g. TF_CONFIG="
  ):
    check_tf_config("{'cluster': ")
  with pytest.raises(KmnistError, match="TF_CONFIG is not a valid cluster description .*'task'"):
    check_tf_config(json.dumps({"cluster": {"worker": ["a:1"]}}))
  with pytest.raises(KmnistError, match="TF_CONFIG is not a valid cluster description .*'chief'"):
    check_tf_config(tf_config(0, task_type="chief"))
  with pytest.raises(
    KmnistError, match="TF_CONFIG task index 2 is outside the 2 'worker' addresses"
  ):
    check_tf_config(tf_config(2))


def test_each_model_brings_its_schedule_and_flags_override_it():
  cnn = TrainConfig(model="cnn")
  assert (cnn.optimizer, cnn.lr_schedule, cnn.model_dir) == (
    "adam",
    "warm_restart",
    "runs/kmnist-cnn",
  )
  augmented = TrainConfig(model="cnn", augment=True)
  assert augmented.steps > cnn.steps and augmented.model_dir == "runs/kmnist-cnn-augment"
  mine = TrainConfig(model="cnn", steps=1000, learning_rate=0.01, model_dir="runs/mine")
  assert (mine.steps, mine.learning_rate, mine.batch_size, mine.model_dir) == (
    1000,
    0.01,
    cnn.batch_size,
    "runs/mine",
  )
  tutorial = TrainConfig()
  assert (tutorial.optimizer, tutorial.lr_schedule, tutorial.model_dir) == (
    "sgd",
    "constant",
    "runs/kmnist",
  )
  for entry in registry.MODELS.values():
    for augment in (False, True):
      config = TrainConfig(model=entry.name, augment=augment).validate()
      schedule = dataclasses.asdict(entry.default_schedule(augment))
      assert round(schedule.pop("warmup") * config.steps) == config.warmup_steps < config.steps
      assert {name: getattr(config, name) for name in schedule} == schedule
      assert config.steps % config.eval_every == 0


def test_defaults_that_depend_on_steps_follow_the_steps_asked_for():
  # Tried as a new user would: a short CNN run (the model's warmup of 215 steps and epoch of 430
  # were once refused for --steps=60, flags the user never set).
  short = TrainConfig(model="cnn", steps=60).validate()
  assert (short.warmup_steps, short.eval_every) == (1, 60)  # 1/43 of the steps; one epoch of 60
  assert TrainConfig(model="cnn", steps=1000).eval_every == 250  # the largest divisor under 430
  assert TrainConfig(model="mlp", steps=1000).warmup_steps == 50  # the mlp's 5 %
  assert TrainConfig(model="cnn", lr_schedule="constant").warmup_steps == 0  # no warmup then
  # A value the user set that conflicts is refused, naming both flags.
  with pytest.raises(
    KmnistError, match=re.escape("--warmup_steps=215 must be at least 0 and below --steps=60")
  ):
    TrainConfig(model="cnn", steps=60, warmup_steps=215).validate()
  with pytest.raises(KmnistError, match=re.escape("--eval_every=430 must divide --steps=60")):
    TrainConfig(model="cnn", steps=60, eval_every=430).validate()


@pytest.mark.parametrize(
  "overrides, message",
  [
    (dict(model="resnet"), "--model=resnet is not known; use one of softmax, mlp, cnn"),
    (dict(optimizer="rmsprop"), "--optimizer=rmsprop is not known; use one of sgd, adam"),
    (
      dict(lr_schedule="step"),
      "--lr_schedule=step is not known; use one of constant, cosine, warm_restart",
    ),
    (
      dict(warmup_steps=10),
      "--warmup_steps=10 needs --lr_schedule=cosine or warm_restart (it is constant)",
    ),
    (
      dict(model="cnn", warmup_steps=5000),
      "--warmup_steps=5000 must be at least 0 and below --steps",
    ),
    (
      dict(model="cnn", learning_rate=-1.0),
      "must be a positive, finite number (the default for --model=cnn is",
    ),
  ],
)
def test_bad_schedules_name_the_flag(overrides, message):
  with pytest.raises(KmnistError, match=re.escape(message)):
    TrainConfig(**overrides).validate()
