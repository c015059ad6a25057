"""Atomic writes and version directories: a reader or a crash never sees half an output, a
version is never replaced, outputs get the usual permissions, and output paths are checked before
any work."""

import json
import os

import pytest

from kmnist.util import files
from kmnist.util.errors import KmnistError


def test_a_crash_while_writing_leaves_the_old_file_whole(tmp_path, monkeypatch):
  path = tmp_path / "metrics.json"
  files.write_json_atomic(path, {"test_accuracy": 0.9})

  def crash(*args):
    raise OSError("disk full")

  monkeypatch.setattr(os, "fsync", crash)
  with pytest.raises(OSError, match="disk full"):
    files.write_json_atomic(path, {"test_accuracy": 0.1, "padding": "x" * 100_000})
  assert json.loads(path.read_text()) == {"test_accuracy": 0.9}
  assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_outputs_get_the_usual_permissions(tmp_path):
  umask = os.umask(0o022)
  try:
    path = files.write_json_atomic(tmp_path / "metrics.json", {})
    with files.atomic_directory(tmp_path / "1") as tmp:
      (tmp / "saved_model.pb").write_bytes(b"")
  finally:
    os.umask(umask)
  assert path.stat().st_mode & 0o777 == 0o644
  assert (tmp_path / "1").stat().st_mode & 0o777 == 0o755


def test_an_atomic_directory_appears_whole_or_not_at_all(tmp_path):
  with pytest.raises(RuntimeError), files.atomic_directory(tmp_path / "1") as tmp:
    (tmp / "half").write_text("")
    raise RuntimeError("crash while writing")
  assert list(tmp_path.iterdir()) == []
  (tmp_path / "2").mkdir()  # an empty directory, which os.rename would silently replace
  with (
    pytest.raises(KmnistError, match="never overwritten"),
    files.atomic_directory(tmp_path / "2") as tmp,
  ):
    (tmp / "saved_model.pb").write_text("")
  assert list((tmp_path / "2").iterdir()) == []


def test_temporaries_of_dead_writers_are_removed(tmp_path):
  dead = tmp_path / ".1.999999999.abc.tmp"  # no such pid
  alive = tmp_path / f".1.{os.getpid()}.abc.tmp"
  dead.mkdir()
  alive.mkdir()
  with files.atomic_directory(tmp_path / "1"):
    pass
  assert not dead.exists() and alive.exists()


def test_free_version_is_one_past_the_highest_in_every_base(tmp_path):
  sm, tfl = tmp_path / "saved_model", tmp_path / "tflite"
  assert files.free_version([sm, tfl]) == 1
  (sm / "2").mkdir(parents=True)
  (tfl / "5").mkdir(parents=True)
  (tfl / ".6.123.x.tmp").mkdir()  # not a version
  (tfl / "notes").mkdir()
  assert files.existing_versions(tfl) == [5]
  assert files.free_version([sm, tfl]) == 6
  assert files.free_version([sm, tfl], 3) == 3
  with pytest.raises(
    KmnistError, match=f"--export_version=5: {tfl / '5'} already exists and is never overwritten"
  ):
    files.free_version([sm, tfl], 5)


def test_writable_directory_checks(tmp_path):
  a_file = tmp_path / "a_file"
  a_file.write_text("")
  files.check_writable_directory(tmp_path / "new" / "deeper", "--model_dir")
  with pytest.raises(
    KmnistError, match=f"--model_dir={a_file / 'x'} cannot be a directory: {a_file} is a file"
  ):
    files.check_writable_directory(a_file / "x", "--model_dir")
  with pytest.raises(KmnistError, match="--export_dir=/proc/1/x is not writable"):
    files.check_writable_directory("/proc/1/x", "--export_dir")
  assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # the probe left nothing
