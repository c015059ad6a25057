"""kmnist.serve.repository.versions: TF Serving's version policy, with a stand-in loader (no
TensorFlow)."""

import os
import threading
import time

import pytest

from kmnist.serve.repository import version_policy, versions
from kmnist.util.errors import KmnistError


@pytest.fixture(autouse=True)
def no_full_collections(monkeypatch):
  """The swap's gc.collect() scans all of TensorFlow in the test process (~0.5 s); kmnist-serve
  freezes start-up objects first (5 ms). Not what these tests are about."""
  monkeypatch.setattr(versions.gc, "collect", lambda: 0)


class Loaded:
  def __init__(self, directory, version):
    self.path, self.version = directory, version


class FakeLoader:
  """Loads any directory whose saved_model.pb does not say 'broken'; counts and can stall loads."""

  def __init__(self):
    self.calls = []
    self.gate = threading.Event()
    self.gate.set()

  def __call__(self, directory, version):
    self.calls.append(version)
    self.gate.wait(30)
    if (directory / "saved_model.pb").read_text() == "broken":
      raise KmnistError(f"{directory} could not be loaded as a SavedModel (broken)")
    return Loaded(directory, version)


def make_version(base, version, content="ok"):
  directory = base / str(version)
  directory.mkdir(parents=True)
  (directory / "saved_model.pb").write_text(content)
  return directory


def states(manager):
  return {int(s["version"]): s["state"] for s in manager.status()}


def test_resolve_base_version_dir_and_refusals(tmp_path):
  make_version(tmp_path / "base", 3)
  assert versions.resolve(tmp_path / "base") == (tmp_path / "base", None)
  assert versions.resolve(tmp_path / "base" / "3") == (tmp_path / "base" / "3", 3)
  named = tmp_path / "model"
  named.mkdir()
  (named / "saved_model.pb").write_text("ok")
  with pytest.raises(KmnistError, match="not a version directory"):
    versions.resolve(named)
  (tmp_path / "empty" / "1").mkdir(parents=True)  # a version directory without saved_model.pb
  for bad in (tmp_path / "empty", tmp_path / "missing", named / "saved_model.pb"):
    with pytest.raises(KmnistError, match="neither a SavedModel version directory"):
      versions.resolve(bad)


def test_serves_the_highest_version_and_follows_new_ones(tmp_path):
  loader = FakeLoader()
  make_version(tmp_path, 1)
  make_version(tmp_path, 2)
  (tmp_path / ".3.999.x.tmp").mkdir()  # a version being written: hidden, never a candidate
  manager = versions.VersionManager(tmp_path, loader, poll_seconds=1)
  assert manager.load_initial().version == 2
  assert states(manager) == {2: "AVAILABLE"}
  manager.poll_once()
  assert loader.calls == [2]  # nothing new: nothing loaded
  make_version(tmp_path, 3)
  manager.poll_once()
  assert manager.current.version == 3
  assert states(manager) == {3: "AVAILABLE", 2: "END"}
  status = manager.status(3)
  assert status == [
    {"version": "3", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
  ]


def test_a_broken_version_is_reported_and_the_old_one_keeps_serving(tmp_path):
  loader = FakeLoader()
  make_version(tmp_path, 1)
  manager = versions.VersionManager(tmp_path, loader)
  manager.load_initial()
  broken = make_version(tmp_path, 2, "broken")
  manager.poll_once()
  assert manager.current.version == 1
  (entry2,) = manager.status(2)
  assert entry2["state"] == "END" and entry2["status"]["error_code"] == "UNKNOWN"
  assert "could not be loaded" in entry2["status"]["error_message"]
  manager.poll_once()
  assert loader.calls == [1, 2]  # not retried while unchanged
  (broken / "saved_model.pb").write_text("ok")  # fixed in place: the directory changes
  os.utime(broken, ns=(time.time_ns() + 10**9,) * 2)
  manager.poll_once()
  assert manager.current.version == 2 and loader.calls == [1, 2, 2]


def test_initial_load_falls_back_to_the_newest_version_that_loads(tmp_path):
  make_version(tmp_path, 1)
  make_version(tmp_path, 2, "broken")
  manager = versions.VersionManager(tmp_path, FakeLoader())
  assert manager.load_initial().version == 1
  assert states(manager) == {2: "END", 1: "AVAILABLE"}
  only_broken = tmp_path / "other"
  make_version(only_broken, 5, "broken")
  with pytest.raises(KmnistError, match=r"no version could be loaded \(version 5: .*broken"):
    versions.VersionManager(only_broken, FakeLoader()).load_initial()


def test_deleting_the_served_version_rolls_back_and_an_empty_base_keeps_serving(tmp_path):
  import shutil

  make_version(tmp_path, 1)
  make_version(tmp_path, 2)
  manager = versions.VersionManager(tmp_path, FakeLoader())
  manager.load_initial()
  shutil.rmtree(tmp_path / "2")
  manager.poll_once()
  assert manager.current.version == 1  # TF Serving's policy: the highest version there is
  shutil.rmtree(tmp_path / "1")
  manager.poll_once()
  assert manager.current.version == 1  # nothing left to serve instead: the loaded one stays


def test_a_version_directory_is_served_alone_and_not_polled(tmp_path):
  make_version(tmp_path, 1)
  make_version(tmp_path, 2)
  manager = versions.VersionManager(tmp_path / "1", FakeLoader(), poll_seconds=1)
  assert manager.load_initial().version == 1 and manager.poll_seconds == 0
  manager.poll_once()
  assert manager.current.version == 1
  broken = tmp_path / "other" / "4"
  make_version(tmp_path / "other", 4, "broken")
  with pytest.raises(KmnistError, match="no version could be loaded"):
    versions.VersionManager(broken, FakeLoader()).load_initial()


def test_the_poller_swaps_only_when_the_new_version_is_loaded(tmp_path):
  loader = FakeLoader()
  make_version(tmp_path, 1)
  manager = versions.VersionManager(tmp_path, loader, poll_seconds=0.02)
  manager.load_initial()
  loader.gate.clear()  # the next load stalls
  manager.start()
  try:
    make_version(tmp_path, 2)
    deadline = time.monotonic() + 10
    while states(manager).get(2) != "LOADING" and time.monotonic() < deadline:
      time.sleep(0.01)
    assert states(manager) == {2: "LOADING", 1: "AVAILABLE"}
    assert manager.current.version == 1  # still answering while 2 loads
    loader.gate.set()
    while manager.current.version != 2 and time.monotonic() < deadline:
      time.sleep(0.01)
    assert manager.current.version == 2 and states(manager) == {2: "AVAILABLE", 1: "END"}
  finally:
    loader.gate.set()
    manager.stop()
  assert not manager._thread.is_alive()


def test_status_keeps_a_bounded_history(tmp_path):
  manager = versions.VersionManager(make_version(tmp_path, 1).parent, FakeLoader())
  manager.load_initial()
  for version in range(2, 30):
    make_version(tmp_path, version)
    manager.poll_once()
  assert len(manager.status()) == versions.KEEP_ENDED + 1
  assert manager.status()[0] == {
    "version": "29",
    "state": "AVAILABLE",
    "status": {"error_code": "OK", "error_message": ""},
  }


def test_policies_all_and_specific_serve_several_versions_the_highest_by_default(tmp_path):
  for version in (1, 2, 3):
    make_version(tmp_path, version)
  manager = versions.VersionManager(tmp_path, FakeLoader(), policy=version_policy.Policy("all"))
  manager.load_initial()
  assert manager.served_versions() == [1, 2, 3] and manager.current.version == 3
  assert [manager.servable(v).version for v in (1, 2, 3, None)] == [1, 2, 3, 3]
  assert states(manager) == {1: "AVAILABLE", 2: "AVAILABLE", 3: "AVAILABLE"}
  manager.set_policy(version_policy.Policy("specific", versions=(1, 2)))  # a rollback to 2
  manager.poll_once()
  assert manager.served_versions() == [1, 2] and manager.servable().version == 2
  assert states(manager) == {1: "AVAILABLE", 2: "AVAILABLE", 3: "END"}
  with pytest.raises(
    versions.VersionNotFoundError, match=r"Specific\(kmnist, 3\); this server serves versions 1, 2"
  ):
    manager.servable(3)
  manager.set_policy(version_policy.Policy("latest", num_versions=2))
  manager.poll_once()
  assert manager.served_versions() == [2, 3]


def test_labels_name_served_versions(tmp_path):
  for version in (1, 2):
    make_version(tmp_path, version)
  manager = versions.VersionManager(tmp_path, FakeLoader(), policy=version_policy.Policy("all"))
  manager.load_initial()
  manager.labels = {"stable": 1, "canary": 2}
  assert manager.servable(label="stable").version == 1
  assert manager.servable(label="canary").version == 2
  with pytest.raises(versions.UnknownLabelError, match="label: beta .*'canary', 'stable'"):
    manager.servable(label="beta")
