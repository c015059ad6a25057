"""Real write faults for the tests: a full disk and a read-only file system (a small tmpfs, as
root), and a file size limit of zero (RLIMIT_FSIZE, any user), each turned on and off at will.

Every fault is the kernel's own refusal, so TensorFlow's C++ writers meet it exactly as Python's do.
"""

import contextlib
import os
import resource
import signal
import subprocess
from pathlib import Path

import pytest

IS_ROOT = os.geteuid() == 0
NEEDS_ROOT = "mounting a tmpfs (a real full or read-only disk) needs root; CI runs as root"


class Fault:
  """A fault on the file system under `root`: `on()` makes writes there fail, `off()` undoes it."""

  name = ""
  strerror = ""

  def __init__(self, root: Path):
    self.root = root

  def on(self):
    raise NotImplementedError

  def off(self):
    raise NotImplementedError

  def close(self):
    pass

  @contextlib.contextmanager
  def active(self):
    self.on()
    try:
      yield
    finally:
      self.off()


class SizeLimit(Fault):
  """RLIMIT_FSIZE = 0: this process cannot grow any file (EFBIG), wherever it is."""

  name, strerror = "file size limit", os.strerror(27)  # EFBIG

  def on(self):
    self.saved = resource.getrlimit(resource.RLIMIT_FSIZE), signal.getsignal(signal.SIGXFSZ)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, self.saved[0][1]))

  def off(self):
    resource.setrlimit(resource.RLIMIT_FSIZE, self.saved[0])
    signal.signal(signal.SIGXFSZ, self.saved[1])


class Tmpfs(Fault):
  """A 4 MiB tmpfs mounted at `root` (as root only), unmounted by `close()`."""

  def __init__(self, root: Path, size: str = "4m"):
    super().__init__(root)
    if not IS_ROOT:
      if os.environ.get("CI"):  # CI runs as root: there a real full disk must be tested
        pytest.fail(f"the tmpfs tests must run in CI: {NEEDS_ROOT}", pytrace=False)
      pytest.skip(NEEDS_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(root)], check=True)

  def close(self):
    # Lazily: TensorFlow may still hold a file open there (a summary writer).
    subprocess.run(["umount", "-l", str(self.root)], check=True)


class FullDisk(Tmpfs):
  """The tmpfs filled to its last byte by a file of zeros; `off()` deletes it."""

  name, strerror = "disk full", os.strerror(28)  # ENOSPC

  def on(self):
    fd = os.open(self.root / ".filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
      while True:
        os.write(fd, bytes(65536))
    except OSError:
      pass  # full
    try:
      while True:  # the last few bytes
        os.write(fd, b"\0")
    except OSError:
      pass
    finally:
      os.close(fd)

  def off(self):
    os.unlink(self.root / ".filler")


class ReadOnly(Tmpfs):
  """The tmpfs remounted read-only."""

  name, strerror = "read-only", os.strerror(30)  # EROFS

  def on(self):
    subprocess.run(["mount", "-o", "remount,ro", str(self.root)], check=True)

  def off(self):
    subprocess.run(["mount", "-o", "remount,rw", str(self.root)], check=True)


KINDS = {"disk full": FullDisk, "read-only": ReadOnly, "file size limit": SizeLimit}


@contextlib.contextmanager
def fault_under(kind: str, root: Path):
  """The fault `kind` for files under `root` (a new directory), cleaned up on the way out."""
  fault = KINDS[kind](root)
  root.mkdir(parents=True, exist_ok=True)
  try:
    yield fault
  finally:
    fault.close()


def visible_files(root: Path) -> set[str]:
  """Every file under `root` a reader would open: hidden names (temporaries) left out."""
  return {
    str(p.relative_to(root))
    for p in root.rglob("*")
    if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
  }
