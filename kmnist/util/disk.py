"""Writes that fail: a full disk, a read-only file system or a lost permission, as one line.

Such a write reaches kmnist as an OSError (Python's own writes: metrics, pictures, the manifest, the
decoded-split cache) or as a TensorFlow error whose message ends in "<path>; <strerror>"
(checkpoints, SavedModel, TensorBoard logs). Either becomes a `DiskError` naming the path, what is
wrong with the disk and what to do; every writer keeps what is already on disk whole, so the same
command run again once the disk is fixed picks up where it stopped. No TensorFlow here: errors are
told apart by their errno, or by the strerror text in TensorFlow's message.
"""

import contextlib
import errno
import os
import re
from pathlib import Path

from kmnist.util.errors import KmnistError

RERUN = "then run the same command again: it picks up where this run stopped"


NO_TEMPORARY = "No usable temporary directory found"


class DiskError(KmnistError):
  """A write the disk refused: nothing of kmnist's is wrong, and a rerun can finish the job."""


# errno -> (what is wrong, what to do); "{dir}" is the directory that was being written.
PROBLEMS = {
  errno.ENOSPC: ("the disk is full", "free space on it (df {dir} shows how much is left)"),
  errno.EDQUOT: ("your disk quota is used up", "free space or ask for a larger quota"),
  errno.EROFS: (
    "its file system is read-only",
    "remount it read-write, or give a directory on a writable disk",
  ),
  errno.EACCES: (
    "permission to write there was taken away",
    "make {dir} writable for this user (chmod u+w {dir}), or give another directory",
  ),
  errno.EPERM: (
    "the operation is not permitted there",
    "make {dir} writable for this user, or give another directory",
  ),
  errno.EFBIG: ("a file grew over this process's size limit", "raise the limit (ulimit -f)"),
  errno.EIO: (
    "the disk reported an input/output error",
    "check the disk (dmesg), or use another",
  ),
}


def disk_errno(error: BaseException) -> int | None:
  """The errno of `PROBLEMS` behind `error` (an OSError, or a TensorFlow error's message)."""
  if isinstance(error, OSError) and error.errno in PROBLEMS:
    return error.errno
  message = getattr(error, "message", None)  # tf.errors.OpError: "<path>; No space left on device"
  if isinstance(message, str):
    for code in PROBLEMS:
      if os.strerror(code) in message:
        return code
  return None


def path_in(error: BaseException) -> Path | None:
  """The path an OSError or a TensorFlow file error names."""
  if isinstance(error, OSError) and error.filename:
    return Path(os.fsdecode(error.filename))
  code, message = disk_errno(error), getattr(error, "message", None)
  if code is None or not isinstance(message, str):
    return None
  found = re.search(rf"(\S+); {re.escape(os.strerror(code))}", message)
  return Path(found.group(1)) if found else None


def explain(error: BaseException, path=None) -> DiskError | None:
  """`error` as a DiskError naming `path` (default: the path in the error), or None if it is not a
  disk's refusal."""
  if isinstance(error, FileNotFoundError) and str(error.strerror).startswith(NO_TEMPORARY):
    # Python's tempfile, when every candidate directory refuses its probe file (TensorFlow's
    # import asks for one).
    return DiskError(
      f"{error.strerror}: each is full, read-only or not writable; free space in one or set "
      f"TMPDIR to a writable directory, {RERUN}"
    )
  code = disk_errno(error)
  if code is None:
    return None
  path = Path(path) if path is not None else path_in(error)
  where = f" {path}" if path else ""
  directory = path if path is None or path.is_dir() else path.parent
  problem, fix = PROBLEMS[code]
  return DiskError(
    f"could not write{where}: {problem} ({os.strerror(code)}); "
    f"{fix.format(dir=directory or 'it')}, {RERUN}"
  )


@contextlib.contextmanager
def reported(path):
  """Turns a disk's refusal inside the block into a DiskError naming `path`; the rest passes."""
  try:
    yield
  except KmnistError:
    raise
  except Exception as e:
    error = explain(e, path)
    if error is None:
      raise
    raise error from None
