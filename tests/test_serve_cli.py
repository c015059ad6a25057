"""kmnist-serve's command line: every fault a user can meet is one line, exit code 2, and flag
faults are found before TensorFlow loads."""

import concurrent.futures
import socket
import subprocess
import sys
import textwrap

import pytest

from kmnist.cli import serve
from kmnist.predict.model_paths import reference_export

RUN_CLI = textwrap.dedent("""
    import sys
    from kmnist.cli import serve
    sys.argv = ["kmnist-serve", *sys.argv[1:]]
    try:
      serve.cli()
    finally:
      print("tensorflow imported:", "tensorflow" in sys.modules, file=sys.stderr)
    """)


def run_cli(*args, cwd=None):
  return subprocess.run(
    [sys.executable, "-c", RUN_CLI, *map(str, args)],
    capture_output=True,
    text=True,
    timeout=120,
    cwd=cwd,
  )


@pytest.fixture(scope="module")
def busy_port():
  with socket.socket() as listener:
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    yield listener.getsockname()[1]


def flag_faults(tmp_path, busy_port):
  not_a_model = tmp_path / "empty"
  not_a_model.mkdir(exist_ok=True)
  return [
    (["--http_port=0"], "--http_port=0 is not a port; give one from 1 to 65535"),
    (
      ["--grpc_port=70000"],
      "--grpc_port=70000 is not a port; give one from 0 to 65535 (0: no gRPC)",
    ),
    (["--http_port=9000", "--grpc_port=9000"], "--http_port and --grpc_port are both 9000"),
    (["--poll_seconds=-1"], "--poll_seconds=-1.0 must be 0 (never look) or positive"),
    (["--max_batch_size=0"], "--max_batch_size=0 must be a positive integer"),
    (["--max_request_bytes=10"], "--max_request_bytes=10 is too small for one digit"),
    (["--model_name=a/b"], "--model_name='a/b' cannot be used in a URL"),
    (
      [f"--model={not_a_model}"],
      f"--model={not_a_model} is neither a SavedModel version directory",
    ),
    ([f"--model={tmp_path / 'missing'}"], "is neither a SavedModel version directory"),
    (
      [f"--http_port={busy_port}"],
      f"--http_port={busy_port}: port {busy_port} on 127.0.0.1 is "
      f"in use (another kmnist-serve or TF Serving?); stop it or "
      f"pass another --http_port",
    ),
    (
      [f"--grpc_port={busy_port}"],
      f"--grpc_port={busy_port}: port {busy_port} on 127.0.0.1 is in use",
    ),
    (["--host=192.0.2.1"], "--host=192.0.2.1 is not an address of this machine"),
    (
      ["--host=no-such-host.invalid"],
      "--host=no-such-host.invalid is not an address of this machine",
    ),
    (["extra"], "unexpected arguments ['extra']; kmnist-serve takes only --flags"),
  ]


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_flag_faults_are_one_line_before_tensorflow(tmp_path, busy_port):
  faults = flag_faults(tmp_path, busy_port)

  def run(args):
    ports = [
      f"--{name}={free_port()}"
      for name in ("http_port", "grpc_port")
      if not any(a.startswith(f"--{name}") for a in args)
    ]
    return run_cli(*args, *ports)

  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    results = list(pool.map(run, [args for args, _ in faults]))
  for (args, message), result in zip(faults, results, strict=True):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr, (args, result.stderr)
    assert lines[-1] == "tensorflow imported: False", args
    if args == ["extra"]:  # absl's usage error: help text, exit 1
      assert message in result.stderr
      continue
    assert result.returncode == 2, args
    (error,) = lines[:-1]
    assert error.startswith("kmnist-serve: error: --") and message in error, (args, error)


def test_a_model_that_does_not_load_is_one_line(tmp_path):
  (tmp_path / "base" / "1").mkdir(parents=True)
  (tmp_path / "base" / "1" / "saved_model.pb").write_bytes(b"garbage")
  result = run_cli(f"--model={tmp_path / 'base'}", f"--http_port={free_port()}", "--grpc_port=0")
  errors = [line for line in result.stderr.splitlines() if "kmnist-serve: error:" in line]
  assert result.returncode == 2 and "Traceback" not in result.stderr
  assert errors == [
    f"kmnist-serve: error: --model={tmp_path / 'base'}: no version could be "
    f"loaded (version 1: {tmp_path / 'base' / '1'} could not be loaded as a "
    f"SavedModel (" + errors[0].split("SavedModel (", 1)[1]
  ]
  assert errors[0].endswith("); serve an export written by kmnist-train")


def test_default_model_is_the_newest_run_export_else_the_reference(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert serve.default_model() == serve.default_model_base() == reference_export() / "saved_model"
  assert (serve.default_model_base() / "1" / "saved_model.pb").is_file()
  (tmp_path / "exported" / "saved_model" / "1").mkdir(parents=True)  # incomplete: not a version
  assert serve.default_model() == serve.default_model_base()
  (tmp_path / "exported" / "saved_model" / "1" / "saved_model.pb").write_bytes(b"")
  assert serve.default_model() == serve.RUN_EXPORTS
