"""Where exports live on disk: TF Serving's `<base>/<integer version>/` layout. Plain paths, no TensorFlow."""

from pathlib import Path


def existing_versions(export_base) -> list[int]:
  base = Path(export_base)
  if not base.is_dir():
    return []
  return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())


def next_version(export_base) -> int:
  """One past the highest integer version directory (TF Serving serves the highest)."""
  versions = existing_versions(export_base)
  return versions[-1] + 1 if versions else 1


def is_saved_model(path) -> bool:
  return (Path(path) / "saved_model.pb").is_file()
