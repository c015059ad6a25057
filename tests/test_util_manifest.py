"""MANIFEST.json: versions, flags, accuracy and a sha256 per file, and what has changed since."""

import json

from kmnist.util import manifest


def test_manifest_lists_every_file_and_notices_changes(tmp_path):
  (tmp_path / "a.txt").write_text("one")
  (tmp_path / "sub").mkdir()
  (tmp_path / "sub" / "b.bin").write_bytes(b"\0")
  path = manifest.write_manifest(
    tmp_path,
    {"test_accuracy": 0.5, "test_loss": 1.0},
    {"steps": 3},
    [tmp_path / "a.txt", tmp_path / "sub"],
  )
  written = json.loads(path.read_text())
  assert sorted(written["files"]) == ["a.txt", "sub/b.bin"]
  assert written["config"] == {"steps": 3} and written["test_accuracy"] == 0.5
  assert written["versions"]["numpy"] and written["versions"]["python"]
  assert manifest.changed_files(tmp_path) == []
  (tmp_path / "a.txt").write_text("two")
  (tmp_path / "sub" / "b.bin").unlink()
  assert manifest.changed_files(tmp_path) == ["a.txt", "sub/b.bin"]
