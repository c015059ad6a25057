"""Files on disk: atomic writes, TF Serving's `<base>/<version>/` directories, writable paths.

A reader (TF Serving, a rerun, a crash) never sees a half-written output: files are written to a
temporary sibling and renamed, version directories are filled under a hidden name and renamed when
complete, and an existing version is never replaced.
"""

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from kmnist.util import disk
from kmnist.util.errors import KmnistError


def _umask() -> int:
  mask = os.umask(0)  # umask can only be read by setting it; put it straight back
  os.umask(mask)
  return mask


def write_bytes_atomic(path, data: bytes) -> Path:
  """Writes `data` via a temporary sibling and a rename: `path` is either old or complete.

  A disk that refuses the write (full, read-only, no permission) raises disk.DiskError naming
  `path`, and leaves no temporary behind.
  """
  path = Path(path)
  with disk.reported(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_via_temporary(path, data)
  return path


def _write_via_temporary(path: Path, data: bytes) -> None:
  fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
  try:
    os.fchmod(
      fd, 0o666 & ~_umask()
    )  # mkstemp makes owner-only files; outputs get the usual permissions
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):  # on a read-only disk even the cleanup can fail
      os.unlink(tmp)
    raise


def write_text_atomic(path, text: str) -> Path:
  return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path, obj) -> Path:
  return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


class Staged:
  """A version directory being written: `path` (hidden) to fill, `publish()` to make it appear."""

  def __init__(self, final_path: Path, path: Path):
    self.final_path, self.path, self.published = final_path, path, False

  def publish(self) -> Path:
    if self.final_path.exists():  # os.rename would silently replace an empty directory.
      raise KmnistError(
        f"{self.final_path} appeared while this run wrote it (another run exporting into the same "
        "directory took the number); it is never overwritten: run again for the next free version"
      )
    os.rename(self.path, self.final_path)
    self.published = True
    return self.final_path


@contextlib.contextmanager
def staged_directory(final_path):
  """Yields a Staged: a temporary sibling of `final_path` to fill, renamed to `final_path` when
  its `publish()` is called, removed if the block raises or ends without publishing.

  The temporary name starts with '.', so TensorFlow Serving (which watches integer-named version
  directories) never picks up a partial or unchecked export: a writer can check what it wrote, and
  write what must be in place first, before the version appears. An existing `final_path` is never
  replaced. A disk that refuses a write inside the block (full, read-only, no permission) raises
  disk.DiskError naming `final_path`.
  """
  final_path = Path(final_path)
  with disk.reported(final_path):
    final_path.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_temporaries(final_path)
    tmp = Path(
      tempfile.mkdtemp(
        prefix=f".{final_path.name}.{os.getpid()}.", suffix=".tmp", dir=final_path.parent
      )
    )
    staged = Staged(final_path, tmp)
    try:
      # mkdtemp makes it owner-only; a server running as another user must read it.
      tmp.chmod(0o777 & ~_umask())
      yield staged
    finally:
      if not staged.published:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(final_path):
  """Yields a temporary sibling to fill; renames it to `final_path` if the block succeeds (a
  staged_directory published at once)."""
  with staged_directory(final_path) as staged:
    yield staged.path
    staged.publish()


def remove_abandoned_temporaries(final_path: Path) -> None:
  """Deletes temporaries left for `final_path` by writers whose process no longer exists."""
  for leftover in final_path.parent.glob(f".{final_path.name}.*.tmp"):
    pid = leftover.name[len(final_path.name) + 2 :].split(".")[0]
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


def existing_versions(base) -> list[int]:
  """The integer version directories under `base`, ascending (TF Serving serves the highest)."""
  base = Path(base)
  if not base.is_dir():
    return []
  return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())


def free_version(bases, version: int | None = None) -> int:
  """`version` if it is free under every base, or the next free number of them all when it is None.

  One number names a run's exports in every base (saved_model/ and tflite/), so the default is one
  past the highest version found in any of them. Raises KmnistError naming the taken directory.
  """
  bases = [Path(base) for base in bases]
  if version is None:
    return max((existing_versions(base)[-1:] or [0])[0] for base in bases) + 1
  for base in bases:
    taken = base / str(version)
    if taken.exists():
      raise KmnistError(
        f"--export_version={version}: {taken} already exists and is never overwritten; pick "
        f"another version or leave --export_version unset for the next free one"
      )
  return version


def is_saved_model(path) -> bool:
  return (Path(path) / "saved_model.pb").is_file()


def saved_model_versions(base) -> list[int]:
  """The complete SavedModel versions under a TF Serving base (an integer directory holding
  saved_model.pb), ascending: what a server may serve."""
  return [v for v in existing_versions(base) if is_saved_model(Path(base) / str(v))]


def check_writable_directory(path, flag: str) -> None:
  """Fails, naming `flag`, unless `path` is (or can become) a directory this process can write.

  Checked before any work starts, so a typo costs a second, not a training run. Writes nothing that
  stays: the probe file is created and removed in the nearest existing ancestor.
  """
  existing = Path(path).expanduser().absolute()
  while not existing.exists():
    existing = existing.parent
  if not existing.is_dir():
    raise KmnistError(
      f"{flag}={path} cannot be a directory: {existing} is a file; give a directory path"
    )
  try:
    fd, probe = tempfile.mkstemp(prefix=".kmnist-write-probe-", dir=existing)
    os.close(fd)
    os.unlink(probe)
  except OSError as e:
    raise KmnistError(
      f"{flag}={path} is not writable ({e.strerror} in {existing}); "
      f"give a directory you can write to"
    ) from None
