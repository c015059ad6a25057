"""kmnist.serve.repository.version_policy: TF Serving's latest/all/specific, from its own proto."""

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import file_system_storage_path_source_pb2 as fs_pb2

from kmnist.serve.repository import version_policy

FOUND = [1, 2, 5, 7]


def from_text(text: str) -> version_policy.Policy:
  message = fs_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy()
  return version_policy.from_proto(text_format.Parse(text, message))


@pytest.mark.parametrize(
  "text, aspired, described",
  [
    ("", [7], "the latest version"),  # unset: TF Serving's default, latest 1
    ("latest {}", [7], "the latest version"),  # num_versions 0 counts as 1
    ("latest { num_versions: 2 }", [5, 7], "the latest 2 versions"),
    ("latest { num_versions: 9 }", FOUND, "the latest 9 versions"),
    ("all {}", FOUND, "all versions"),
    ("specific { versions: 2 versions: 5 }", [2, 5], "specific versions 2, 5"),
    ("specific { versions: 3 versions: 5 }", [5], "specific versions 3, 5"),  # 3 not there (yet)
  ],
)
def test_each_policy_serves_what_tf_serving_serves(text, aspired, described):
  policy = from_text(text)
  assert policy.aspired(FOUND) == aspired and policy.aspired([]) == []
  assert policy.describe() == described
