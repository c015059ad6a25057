"""kmnist-serve's model config, batching and CORS flags (kmnist/cli/serve_config.py): every fault
is one line and exit code 2, found before TensorFlow loads."""

import concurrent.futures

from test_serve_cli import free_port, run_cli

from kmnist.predict.model_paths import reference_export

BASE = reference_export() / "saved_model"


def faults(tmp_path):
  good = tmp_path / "good.config"
  good.write_text(
    f'model_config_list {{ config {{ name: "softmax" base_path: "{BASE}" '
    'model_platform: "tensorflow" } }'
  )
  bad = tmp_path / "bad.config"
  bad.write_text(
    f'model_config_list {{\n  config {{\n    name: "softmax"\n    base_path: "{BASE}"\n'
    '    model_platform: "tensorflow"\n    version_labels { key: "stable" value: 2 }\n  }\n}\n'
  )
  batching = tmp_path / "batching.config"
  batching.write_text("max_batch_size { value: 0 }")
  return [
    (
      [f"--model={BASE}", f"--model_config_file={good}"],
      "--model and --model_config_file both say which models to serve; give one",
    ),
    (["--model_name=x", f"--model_config_file={good}"], "--model_name and --model_config_file"),
    (
      [f"--model_config_file={bad}"],
      f"--model_config_file={bad}: line 6: model softmax: version label 'stable' names version 2",
    ),
    (
      [f"--model_config_file={tmp_path / 'none.config'}"],
      f"--model_config_file={tmp_path / 'none.config'} cannot be read (",
    ),
    (
      [f"--model_config_file={good}", "--model_config_file_poll_wait_seconds=-1"],
      "--model_config_file_poll_wait_seconds=-1 must be 0 (read once) or positive",
    ),
    (
      [f"--batching_parameters_file={batching}"],
      "--batching_parameters_file is set without --enable_batching; add it",
    ),
    (
      ["--enable_batching", f"--batching_parameters_file={batching}"],
      f"--batching_parameters_file={batching}: max_batch_size is 0; it must be at least 1",
    ),
    (["--cors_allowed_origins=example.com"], "--cors_allowed_origins: 'example.com' is not an"),
  ]


def test_faults_are_one_line_before_tensorflow(tmp_path):
  cases = faults(tmp_path)

  def run(args):
    return run_cli(*args, f"--http_port={free_port()}", f"--grpc_port={free_port()}")

  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    results = list(pool.map(run, [args for args, _ in cases]))
  for (args, message), result in zip(cases, results, strict=True):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and "Traceback" not in result.stderr, (args, result.stderr)
    assert lines[-1] == "tensorflow imported: False", args
    (error,) = lines[:-1]
    assert error.startswith("kmnist-serve: error: --") and message in error, (args, error)
