"""Atomic file and directory writes: a reader (or a crash) never sees a half-written output."""

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from kmnist.errors import KmnistError


def write_bytes_atomic(path, data: bytes) -> Path:
  """Writes `data` to `path` via a temporary sibling and a rename, so `path` is either old or complete."""
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.unlink(tmp)
    raise
  return path


def write_text_atomic(path, text: str) -> Path:
  return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path, obj) -> Path:
  return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def atomic_directory(final_path):
  """Yields a temporary sibling directory to fill; renames it to `final_path` only if the block succeeds.

  The temporary name starts with '.', so TensorFlow Serving (which watches integer-named version
  directories) never picks up a partial export. An existing `final_path` is never replaced.
  """
  final_path = Path(final_path)
  final_path.parent.mkdir(parents=True, exist_ok=True)
  remove_abandoned_temporaries(final_path)
  tmp = Path(tempfile.mkdtemp(prefix=f".{final_path.name}.{os.getpid()}.", suffix=".tmp", dir=final_path.parent))
  try:
    yield tmp
    if final_path.exists():  # os.rename would silently replace an empty directory.
      raise FileExistsError(f"{final_path} already exists; refusing to overwrite it")
    os.rename(tmp, final_path)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


def remove_abandoned_temporaries(final_path: Path) -> None:
  """Deletes temporaries left for `final_path` by writers that were killed (their process no longer exists)."""
  for leftover in final_path.parent.glob(f".{final_path.name}.*.tmp"):
    pid = leftover.name[len(final_path.name) + 2:].split(".")[0]
    if pid.isdigit() and not _process_exists(int(pid)):
      shutil.rmtree(leftover, ignore_errors=True)


def _process_exists(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def check_writable_directory(path, flag: str) -> None:
  """Fails, naming `flag`, unless `path` is (or can be created as) a directory this process can write into.

  Checked before any work starts, so a typo costs a second, not a training run. Writes nothing that stays: the
  probe file is created and removed in the nearest existing ancestor.
  """
  existing = Path(path).expanduser().absolute()
  while not existing.exists():
    existing = existing.parent
  if not existing.is_dir():
    raise KmnistError(f"{flag}={path} cannot be a directory: {existing} is a file; give a directory path")
  try:
    fd, probe = tempfile.mkstemp(prefix=".kmnist-write-probe-", dir=existing)
    os.close(fd)
    os.unlink(probe)
  except OSError as e:
    raise KmnistError(f"{flag}={path} is not writable ({e.strerror} in {existing}); "
                      f"give a directory you can write to") from None
