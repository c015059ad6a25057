"""kmnist.serve.repository.model_config: TF Serving's model config file, parsed with TF Serving's
protos, and every problem one line naming the line of the file."""

import pytest

from kmnist.serve.repository import model_config, version_policy
from kmnist.util.errors import KmnistError


@pytest.fixture
def bases(tmp_path):
  """Three model bases with versions 1 and 2 (a saved_model.pb is what makes a version)."""
  for name in ("softmax", "mlp", "cnn"):
    for version in (1, 2):
      (tmp_path / name / str(version)).mkdir(parents=True)
      (tmp_path / name / str(version) / "saved_model.pb").write_bytes(b"")
  return tmp_path


def family(bases) -> str:
  return f"""# the three models
model_config_list {{
  config {{
    name: "softmax"
    base_path: "{bases}/softmax"
    model_platform: "tensorflow"
  }}
  config {{
    name: 'mlp'
    base_path: '{bases}/mlp'
    model_platform: 'tensorflow'
    model_version_policy {{ all {{}} }}
  }}
  config {{
    name: "cnn"
    base_path: "{bases}/cnn"
    model_platform: "tensorflow"
    model_version_policy {{ specific {{ versions: 1 versions: 2 }} }}
    version_labels {{ key: "stable" value: 1 }}
    version_labels {{ key: "canary" value: 2 }}
  }}
}}
"""


def test_the_three_models_with_policies_and_labels(bases, tmp_path):
  path = tmp_path / "models.config"
  path.write_text(family(bases))
  softmax, mlp, cnn = model_config.read(path)
  assert (softmax.name, softmax.base_path, softmax.policy, softmax.line) == (
    "softmax",
    bases / "softmax",
    version_policy.LATEST,
    3,
  )
  assert mlp.policy == version_policy.Policy("all") and mlp.line == 8
  assert cnn.policy == version_policy.Policy("specific", versions=(1, 2))
  assert dict(cnn.labels) == {"stable": 1, "canary": 2} and cnn.line == 14
  assert model_config.from_flags(bases / "cnn", "kmnist") == [
    model_config.ModelEntry("kmnist", bases / "cnn")
  ]


def edit(text: str, old: str, new: str) -> str:
  assert old in text
  return text.replace(old, new, 1)


@pytest.mark.parametrize(
  "change, line, words",
  [
    (("name: 'mlp'", "nme: 'mlp'"), 9, 'has no field named "nme"'),
    (("model_config_list {", "model_config_list {{"), 2, "Expected identifier"),
    (("name: 'mlp'", 'name: "softmax"'), 8, "Illegal to list model softmax multiple times"),
    (("name: 'mlp'", 'name: "a/b"'), 8, "model name 'a/b' cannot be used in a URL"),
    (("name: 'mlp'", "name: ''"), 8, "a config has no name"),
    (("base_path: '{b}/mlp'", "base_path: 'mlp'"), 8, "to have an absolute path; got base_path()"),
    (("base_path: '{b}/mlp'", "base_path: '{b}/mlp/1'"), 8, "is one version"),
    (("base_path: '{b}/mlp'", "base_path: '{b}/none'"), 8, "is not a directory"),
    (("model_platform: 'tensorflow'", "model_platform: 'tflite'"), 8, "kmnist-serve serves"),
    (("model_platform: 'tensorflow'", ""), 8, "has no model_platform"),
    (("{ all {} }", "{ specific {} }"), 8, "specific {} names no version"),
    (("{ all {} }", "{ specific { versions: 7 } }"), 8, "serves none of the versions"),
    (('key: "canary" value: 2', 'key: "canary" value: 3'), 20, "'canary' names version 3"),
    (('key: "canary"', 'key: "can-ary"'), 20, "'can-ary' is not letters, digits"),
  ],
)
def test_each_problem_is_one_line_naming_its_line(bases, tmp_path, change, line, words):
  old, new = (part.replace("{b}", str(bases)) for part in change)
  path = tmp_path / "models.config"
  path.write_text(edit(family(bases), old, new))
  with pytest.raises(KmnistError) as error:
    model_config.read(path)
  message = str(error.value)
  assert message.startswith(f"--model_config_file={path}: line {line}: "), message
  assert words in message and "\n" not in message, message


def test_an_empty_custom_or_missing_file(tmp_path):
  (tmp_path / "empty.config").write_text("# nothing\n")
  with pytest.raises(KmnistError, match=r"empty.config: line 1: the file lists no model; e\.g\."):
    model_config.read(tmp_path / "empty.config")
  (tmp_path / "custom.config").write_text("# a custom source\ncustom_model_config {}\n")
  with pytest.raises(KmnistError, match=r"custom.config: line 2: custom_model_config is not"):
    model_config.read(tmp_path / "custom.config")
  with pytest.raises(KmnistError, match=r"missing.config cannot be read \(.*No such file"):
    model_config.read(tmp_path / "missing.config")
