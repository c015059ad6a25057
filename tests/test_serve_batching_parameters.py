"""kmnist.serve.repository.batching_parameters: TF Serving's BatchingParameters text files."""

import pytest

from kmnist.serve.repository import batching_parameters
from kmnist.util.errors import KmnistError

TF_SERVING_EXAMPLE = """max_batch_size { value: 128 }
batch_timeout_micros { value: 0 }
max_enqueued_batches { value: 1000000 }
num_batch_threads { value: 8 }
"""  # tensorflow_serving/g3doc/serving_config.md's, as it is


def test_tf_serving_s_example_and_defaults(tmp_path):
  path = tmp_path / "batching.config"
  path.write_text(TF_SERVING_EXAMPLE)
  assert batching_parameters.read(path) == batching_parameters.Parameters(
    max_batch_size=128, batch_timeout_micros=0, max_enqueued_batches=1_000_000, num_batch_threads=8
  )
  path.write_text("allowed_batch_sizes: 4 allowed_batch_sizes: 1000 pad_variable_length_inputs: 1")
  parameters = batching_parameters.read(path)
  assert parameters.allowed_batch_sizes == (4, 1000)
  assert (parameters.max_batch_size, parameters.max_enqueued_batches) == (1000, 10)  # TF Serving's


@pytest.mark.parametrize(
  "text, words",
  [
    ("max_batch_size: 4", 'Expected "{"'),
    ("max_batch_size { value: 4 }\nbatch_size { value: 4 }", 'line 2: Message type "tensorflow'),
    ("num_batch_threads { value: 0 }", "num_batch_threads is 0; it must be at least 1"),
    ("batch_timeout_micros { value: -1 }", "batch_timeout_micros is -1; it must be 0 or more"),
    ("max_batch_size { value: 8 } allowed_batch_sizes: 4", "Last entry in allowed_batch_sizes"),
    ("max_batch_size { value: 8 } allowed_batch_sizes: 8 allowed_batch_sizes: 4", "rising"),
    ("enable_large_batch_splitting { value: true }", "enable_large_batch_splitting is not"),
  ],
)
def test_bad_files_are_one_line(tmp_path, text, words):
  path = tmp_path / "batching.config"
  path.write_text(text)
  with pytest.raises(KmnistError) as error:
    batching_parameters.read(path)
  assert str(error.value).startswith(f"--batching_parameters_file={path}")
  assert words in str(error.value) and "\n" not in str(error.value)
