"""kmnist-train's command line: flags, and bad input reported in one line with exit 2 before any
work."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import synthetic_cli
from absl import flags

from kmnist.cli import common
from kmnist.cli import train as train_cli
from kmnist.data import mnist_files
from kmnist.training.config import TrainConfig


def parse(argv) -> TrainConfig:
  fv = flags.FlagValues()
  train_cli.define_flags(fv)
  fv(["kmnist-train"] + argv)
  return common.config_from_flags(fv)


def test_flag_defaults_are_the_config_defaults():
  assert parse([]) == TrainConfig()


def test_flags_reach_the_config(tmp_path):
  flagfile = tmp_path / "run.flags"
  flagfile.write_text("--steps=200\n--learning_rate=0.1\n--strategy=mirrored\n")
  config = parse(
    [f"--flagfile={flagfile}", "--cpu_replicas=2", "--novisualize", "--tflite=int8,float"]
  )
  assert (config.steps, config.learning_rate, config.strategy, config.cpu_replicas) == (
    200,
    0.1,
    "mirrored",
    2,
  )
  assert (config.visualize, config.tflite) == (False, ("int8", "float"))


def run_cli(*args, cwd=None, env=None, timeout=120):
  return subprocess.run(
    [sys.executable, "-m", "kmnist.cli.train", *map(str, args)],
    capture_output=True,
    text=True,
    cwd=cwd,
    env=env,
    timeout=timeout,
  )


def error_lines(result):
  return [line for line in result.stderr.splitlines() if line.startswith("kmnist-train: error:")]


@pytest.mark.parametrize(
  "arg, expected",
  [
    ("--steps=0", "kmnist-train: error: --steps=0 must be a positive integer"),
    ("--learning_rate=-1", "kmnist-train: error: --learning_rate=-1.0 must be a positive"),
    ("--strategy=tpu9", "flag --strategy=tpu9: value should be one of"),
    ("--no_such_flag=1", "Unknown command line flag 'no_such_flag'"),
    (
      "--tflite=float,fp16",
      "--tflite=float,fp16: 'fp16' is not a TFLite variant; use a comma-separated list of",
    ),
    (
      "--model_dir=/proc/1/kmnist",
      "kmnist-train: error: --model_dir=/proc/1/kmnist is not writable",
    ),
    ("--ray_address=auto", "kmnist-train: error: --ray_address needs --ray_workers=N"),
  ],
)
def test_bad_flags_and_paths_stop_in_a_second_before_tensorflow(tmp_path, arg, expected):
  start = time.monotonic()
  result = run_cli("--data_dir=data", "--model_dir=run", "--export_dir=exported", arg, cwd=tmp_path)
  elapsed = time.monotonic() - start
  assert result.returncode != 0
  assert expected in result.stderr
  assert "Traceback" not in result.stderr
  assert list(tmp_path.iterdir()) == []  # nothing written
  print(f"{arg}: {elapsed:.2f} s")


def test_a_damaged_manual_file_is_named_before_anything_is_prepared(tmp_path):
  manual = tmp_path / "manual"
  manual.mkdir()
  for name in mnist_files.MNIST_FILES:
    (manual / name).write_bytes((mnist_files.VENDORED_DIR / name).read_bytes())
  victim = manual / "train-labels-idx1-ubyte.gz"
  content = bytearray(victim.read_bytes())
  content[len(content) // 2] ^= 0xFF  # one flipped byte, same size
  victim.write_bytes(bytes(content))
  result = run_cli(f"--manual_dir={manual}", f"--data_dir={tmp_path / 'data'}", cwd=tmp_path)
  assert result.returncode == 2
  (line,) = error_lines(result)
  assert f"MNIST file {victim} is corrupted or truncated" in line
  assert sorted(p.name for p in tmp_path.iterdir()) == ["manual"]


def test_an_empty_manual_dir_says_how_to_provide_the_data(tmp_path):
  result = run_cli(f"--manual_dir={tmp_path}", f"--data_dir={tmp_path / 'data'}", cwd=tmp_path)
  assert result.returncode == 2
  (line,) = error_lines(result)
  assert "put the four original MNIST .gz files" in line and "--manual_dir" in line


def test_an_existing_export_version_is_refused_before_training(tmp_path):
  (tmp_path / "exported" / "saved_model" / "3").mkdir(parents=True)
  result = run_cli("--export_version=3", f"--data_dir={tmp_path / 'data'}", cwd=tmp_path)
  assert result.returncode == 2
  (line,) = error_lines(result)
  assert (
    "--export_version=3: exported/saved_model/3 already exists and is never overwritten" in line
  )
  assert not (tmp_path / "data").exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
  "tf_config, strategy, expected",
  [
    (
      '{"cluster": {"worker": ["127.0.0.1:1"]}',
      "multi_worker",
      "TF_CONFIG is not a valid cluster description",
    ),
    (
      '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 1}}',
      "multi_worker",
      "TF_CONFIG task index 1 is outside the 1 'worker' addresses",
    ),
    ("", "multi_worker", "--strategy=multi_worker needs TF_CONFIG, naming the cluster"),
  ],
)
def test_a_cluster_it_cannot_join_is_refused_before_touching_data(
  tmp_path, tf_config, strategy, expected
):
  env = dict(os.environ, TF_CONFIG=tf_config)
  env.pop("TPU_NAME", None)
  result = run_cli(f"--strategy={strategy}", "--data_dir=data", cwd=tmp_path, env=env)
  assert result.returncode == 2
  assert f"kmnist-train: error: {expected}" in result.stderr
  assert "Traceback" not in result.stderr
  assert list(tmp_path.iterdir()) == []


def test_ray_workers_without_ray_name_the_extra_before_tensorflow(tmp_path):
  # Ray and TensorFlow unimportable alike: the refusal comes before either is needed.
  program = (
    "import sys\nsys.modules.update(ray=None, tensorflow=None)\nsys.argv[0] = 'kmnist-train'\n"
    "from kmnist.cli.train import cli\ncli()\n"
  )
  result = subprocess.run(
    [sys.executable, "-c", program, "--ray_workers=2", "--data_dir=data"],
    capture_output=True,
    text=True,
    cwd=tmp_path,
    timeout=120,
  )
  assert result.returncode == 2
  assert error_lines(result) == [
    "kmnist-train: error: --ray_workers needs Ray, which is not installed here: pip install "
    "'kmnist[ray]'"
  ]
  assert "Traceback" not in result.stderr and list(tmp_path.iterdir()) == []


def test_helpfull_lists_the_flags():
  result = run_cli("--helpfull")  # absl exits 1 after printing help; the text is what matters.
  for name in (
    "--steps",
    "--batch_size",
    "--learning_rate",
    "--strategy",
    "--data_dir",
    "--manual_dir",
    "--export_dir",
    "--tflite",
    "--flagfile",
  ):
    assert name in result.stdout


@pytest.mark.slow
def test_divergence_exits_2_with_one_line(tmp_path, real_data_dir):
  result = run_cli("--learning_rate=3e38", f"--data_dir={real_data_dir}", cwd=tmp_path, timeout=300)
  assert result.returncode == 2
  (line,) = error_lines(result)
  assert "training diverged" in line and "at step" in line
  assert not (tmp_path / "exported").exists()


def file_size_limit(limit: int):
  """In the child, before exec: no file may grow past `limit` bytes (EFBIG), the kernel's own
  refusal of a write."""

  def apply():
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

  return apply


@pytest.mark.parametrize(
  "limit, message",
  [
    # 4 KiB: Python's tempfile probe passes, the first checkpoint (32 KB) does not. Slow: the
    # same fault in process is tests/test_util_disk.py's; this is the whole command around it.
    pytest.param(
      4096,
      "could not write run/.*\\(File too large\\); raise the limit \\(ulimit -f\\), then run "
      "the same command again: it picks up where this run stopped",
      marks=pytest.mark.slow,
    ),
    # Nothing at all: TensorFlow's import finds no usable temporary directory.
    (
      0,
      "No usable temporary directory found in .*: each is full, read-only or not writable; "
      "free space in one or set TMPDIR to a writable directory, then run the same command "
      "again: it picks up where this run stopped",
    ),
  ],
  ids=["a checkpoint", "the temporary directory"],
)
def test_a_write_the_disk_refuses_exits_2_with_one_line_naming_the_path(tmp_path, limit, message):
  # The real command when TensorFlow's import is what fails (the synthetic one imports it first).
  flags = [*synthetic_cli.SMALL_RUN, "--tflite=float"]
  command = (
    [sys.executable, "-m", "kmnist.cli.train", *flags]
    if limit == 0
    else synthetic_cli.command(*flags)
  )
  result = subprocess.run(
    command,
    capture_output=True,
    text=True,
    cwd=tmp_path,
    timeout=300,
    preexec_fn=file_size_limit(limit),
  )
  assert result.returncode == 2, result.stderr[-3000:]
  assert re.fullmatch(f"kmnist-train: error: {message}", result.stderr.strip())  # one line
  assert not (tmp_path / "exported").exists()


@pytest.mark.slow  # a training process started and interrupted
def test_ctrl_c_is_one_line_and_exit_130(tmp_path):
  process = subprocess.Popen(
    synthetic_cli.command(
      "--steps=1000000",
      "--eval_every=1000",
      "--batch_size=50",
      "--model_dir=run",
      "--export_dir=exported",
    ),
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
    cwd=tmp_path,
  )
  try:
    while not process.stdout.readline().startswith("Epoch 1/"):  # training has started
      assert process.poll() is None
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
  finally:
    process.kill()
  assert process.returncode == 130
  assert stderr.splitlines() == [
    "kmnist-train: interrupted; what was written is whole, and the same command goes on from "
    "there (kmnist-train from its last checkpoint)"
  ]
