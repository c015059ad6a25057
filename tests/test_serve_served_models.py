"""kmnist.serve.repository.model_set: the served set follows the model config file (stand-in loader
and models, kserve's own ModelRepository; no TensorFlow)."""

import logging
import os

import pytest
from kserve.model_repository import ModelRepository
from test_serve_versions import FakeLoader, make_version

from kmnist.serve.repository import model_set, versions
from kmnist.util.errors import KmnistError


@pytest.fixture(autouse=True)
def no_full_collections(monkeypatch):
  monkeypatch.setattr(versions.gc, "collect", lambda: 0)  # as test_serve_versions.py


class Model:
  engine = None  # what kserve's ModelRepository.unload looks at

  def __init__(self, name, versions):
    self.name, self.versions, self.stopped = name, versions, False

  def stop(self):
    self.stopped = True
    self.versions.stop()


@pytest.fixture
def bases(tmp_path):
  for name in ("softmax", "mlp", "cnn"):
    for version in (1, 2):
      make_version(tmp_path / name, version)
  return tmp_path


def config(bases, *models) -> str:
  """A model config naming `models`: (name, base, extra fields) each."""
  configs = "\n".join(
    f'  config {{ name: "{name}" base_path: "{bases / base}" model_platform: "tensorflow" '
    f"{extra} }}"
    for name, base, extra in models
  )
  return f"model_config_list {{\n{configs}\n}}\n"


SPECIFIC = (
  "model_version_policy { specific { versions: 1 versions: 2 } } "
  'version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 2 }'
)


def served_from(bases, text):
  path = bases / "models.config"
  path.write_text(text)
  repository = ModelRepository()
  served = model_set.ServedModels(
    repository, FakeLoader(), Model, poll_seconds=0, source=f"--model_config_file={path}"
  )
  served.apply(model_set.model_config.read(path))
  served.start()
  return served, repository, path


def serving(repository) -> dict:
  return {
    name: (model.versions.served_versions(), model.versions.labels)
    for name, model in repository.get_models().items()
  }


def test_a_config_is_served_and_changes_are_applied_in_place(bases, caplog):
  served, repository, path = served_from(
    bases, config(bases, ("softmax", "softmax", ""), ("mlp", "mlp", ""), ("cnn", "cnn", SPECIFIC))
  )
  assert serving(repository) == {
    "softmax": ([2], {}),
    "mlp": ([2], {}),
    "cnn": ([1, 2], {"stable": 1, "canary": 2}),
  }
  cnn, mlp = repository.get_model("cnn"), repository.get_model("mlp")
  assert not served.reload_config(path)  # unchanged: nothing done
  caplog.set_level(logging.INFO, logger="kmnist.serve")
  moved = SPECIFIC.replace('"stable" value: 1', '"stable" value: 2')
  path.write_text(
    config(
      bases,
      ("softmax", "softmax", "model_version_policy { all {} }"),
      ("cnn", "cnn", moved),
      ("mlp2", "mlp", ""),
    )
  )
  assert served.reload_config(path)
  assert serving(repository) == {
    "softmax": ([1, 2], {}),
    "cnn": ([1, 2], {"stable": 2, "canary": 2}),
    "mlp2": ([2], {}),
  }
  assert repository.get_model("cnn") is cnn and mlp.stopped  # kept in place; the dropped stops
  assert "model config reloaded: serving softmax, cnn, mlp2" in caplog.text


def test_a_bad_change_is_one_log_line_and_the_running_config_stays(bases, caplog):
  good = config(bases, ("softmax", "softmax", ""), ("cnn", "cnn", SPECIFIC))
  served, repository, path = served_from(bases, good)
  before = serving(repository)
  broken = make_version(bases / "new", 1, "broken")
  bad_changes = [
    good.replace("model_config_list {", "model_config_list {{"),  # not the text format
    good.replace("value: 2 }", "value: 7 }"),  # a label on a version that is not served
    config(bases, ("softmax", "softmax", ""), ("cnn", "cnn", SPECIFIC), ("new", "new", "")),
  ]
  for text in bad_changes:
    caplog.clear()
    path.write_text(text)
    for _ in range(2):  # logged once, not at every poll
      assert not served.reload_config(path)
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert line.startswith("model config not applied, still serving softmax, cnn: ")
    assert serving(repository) == before
  assert str(broken) in line and "could not be loaded" in line
  path.write_text(good.replace("value: 2 }", "value: 1 }"))  # fixed: applied at the next look
  assert served.reload_config(path)
  assert serving(repository)["cnn"] == ([1, 2], {"stable": 1, "canary": 1})


def test_labels_on_versions_that_did_not_load(bases, caplog):
  make_version(bases / "cnn", 3, "broken")
  text = config(
    bases, ("cnn", "cnn", SPECIFIC.replace("versions: 2 }", "versions: 2 versions: 3 }"))
  )
  text = text.replace('"canary" value: 2', '"canary" value: 3')
  with pytest.raises(KmnistError, match=r"line 2: model cnn: Request to assign label to version 3"):
    served_from(bases, text)


def test_a_fault_repeated_after_a_revert_is_logged_again(bases, caplog):
  good = config(bases, ("softmax", "softmax", ""))
  served, _, path = served_from(bases, good)
  bad = good.replace("model_config_list {", "model_config_list {{")
  logged = []
  for text in (bad, good, bad):  # the fault, a revert to what serves, the same fault again
    caplog.clear()
    path.write_text(text)
    assert not served.reload_config(path)
    logged.append([r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR])
  assert len(logged[0]) == 1 and logged[1] == [] and logged[2] == logged[0]


def test_a_label_on_a_version_not_serving_yet_is_set_once_it_serves(bases, caplog):
  caplog.set_level(logging.INFO, "kmnist.serve")
  served, repository, path = served_from(bases, config(bases, ("cnn", "cnn", SPECIFIC)))
  third = make_version(bases / "cnn", 3, "broken")  # found, but its load fails for now
  three = SPECIFIC.replace("versions: 2 }", "versions: 2 versions: 3 }").replace(
    "value: 2", "value: 3"
  )
  path.write_text(config(bases, ("cnn", "cnn", three)))
  served.reload_config(path)
  assert serving(repository)["cnn"] == ([1, 2], {"stable": 1, "canary": 2})  # as they were
  served.retry_labels()  # not yet: said once, not at every try
  errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
  assert len(errors) == 1 and "label to version 3" in errors[0]
  (third / "saved_model.pb").write_text("ok, written again")  # the version now loads
  os.utime(third, (third.stat().st_atime, third.stat().st_mtime + 5))  # its directory changed
  repository.get_model("cnn").versions.poll_once()
  served.retry_labels()
  assert serving(repository)["cnn"] == ([1, 2, 3], {"stable": 1, "canary": 3})
  assert "version labels {'canary': 3, 'stable': 1} applied" in caplog.text
