"""MANIFEST.json: what made an export (versions, flags, accuracy) and the sha256 of every file."""

import hashlib
import json
import os
import platform
from importlib import metadata
from pathlib import Path

from kmnist.util import files

MANIFEST = "MANIFEST.json"
PACKAGES = ("kmnist", "tensorflow", "keras", "tensorflow-datasets", "ai-edge-litert", "numpy")


def sha256(path) -> str:
  return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def kmnist_identity() -> str:
  """kmnist's version and a sha256 of its own source: two workers with the same version string but
  edited code are told apart."""
  package = Path(__file__).resolve().parent
  digest = hashlib.sha256()
  for path in sorted(package.rglob("*.py")):
    digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
  return f"{metadata.version('kmnist')} (source sha256 {digest.hexdigest()[:12]})"


def package_versions() -> dict:
  versions = {"python": platform.python_version()}
  for name in PACKAGES:
    try:
      versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      versions[name] = None
  return versions


def file_hashes(paths, root: Path) -> dict:
  """{path relative to `root` (absolute if outside it): sha256} for every file under `paths`."""
  hashes = {}
  for path in paths:
    path = Path(path)
    for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
      if f.is_file():
        name = (
          os.path.relpath(f, root)
          if f.resolve().is_relative_to(root.resolve())
          else str(f.resolve())
        )
        hashes[name] = sha256(f)
  return hashes


def write_manifest(directory, metrics: dict, config: dict, outputs) -> Path:
  directory = Path(directory)
  manifest = {
    "versions": package_versions(),
    "config": config,
    "test_accuracy": metrics["test_accuracy"],
    "test_loss": metrics["test_loss"],
    "files": file_hashes(outputs, directory),
  }
  return files.write_json_atomic(directory / MANIFEST, manifest)


def changed_files(directory) -> list[str]:
  """Files listed in `directory`'s manifest that are missing or whose sha256 differs."""
  directory = Path(directory)
  listed = json.loads((directory / MANIFEST).read_text())["files"]
  return [
    name
    for name, digest in listed.items()
    if not (directory / name).is_file() or sha256(directory / name) != digest
  ]
