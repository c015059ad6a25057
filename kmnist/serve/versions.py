"""TF Serving's version policy for one model: serve the highest version under the base path.

A poller thread lists the base every `poll_seconds` (TF Serving's --file_system_poll_wait_seconds).
When the highest complete version differs from the one served (a new export, or the served one
deleted), it is loaded and warmed up on that thread while the old one keeps answering, then
swapped in with one assignment. A request takes the servable once, when it starts, so a request in
flight finishes on the version it started with; the old version is released when the last such
request drops it. A version that fails to load is reported in the model status and not retried
until its directory changes; the served version stays.

No TensorFlow here: the loader is passed in, so the command line can check --model with
`resolve` before TensorFlow starts.
"""

import gc
import logging
import threading
import time
from pathlib import Path

from kmnist.util.errors import KmnistError
from kmnist.util.files import existing_versions, is_saved_model

logger = logging.getLogger("kmnist.serve")

# TF Serving's ServableState names, as its model status API reports them.
LOADING, AVAILABLE, END = "LOADING", "AVAILABLE", "END"
KEEP_ENDED = 10  # ended versions kept in the status, newest first


def resolve(model_path) -> tuple[Path, int | None]:
  """(base, None) for a TF Serving base path, (version dir, its number) for one version."""
  path = Path(model_path)
  if path.is_dir() and is_saved_model(path):
    if not path.name.isdigit():
      raise KmnistError(
        f"--model={model_path} is a SavedModel but not a version directory (its "
        f"name is not an integer); put it in a base as <base>/1 and pass the base"
      )
    return path, int(path.name)
  if path.is_dir() and any(is_saved_model(path / str(v)) for v in existing_versions(path)):
    return path, None
  raise KmnistError(
    f"--model={model_path} is neither a SavedModel version directory (with "
    f"saved_model.pb) nor a base directory holding one (like exported/saved_model)"
    f"; train one with kmnist-train"
  )


class VersionManager:
  """The served version of one model, and the history TF Serving's status API reports."""

  def __init__(self, model_path, loader, poll_seconds: float = 1.0):
    """`loader(directory, version)` returns a ready servable (with .version) or raises."""
    self.path, self._fixed_version = resolve(model_path)
    self.poll_seconds = poll_seconds if self._fixed_version is None else 0
    self._loader = loader
    self.current = None  # the servable that answers requests starting now
    self._states: dict[int, tuple[str, str]] = {}  # version -> (state, error message)
    self._failed: dict[int, int] = {}  # version -> its directory's mtime when it failed
    self._lock = threading.Lock()  # guards _states and the swap; requests only read .current
    self._stop = threading.Event()
    self._thread: threading.Thread | None = None
    self._warned_empty = False

  @property
  def follows_base(self) -> bool:
    return self._fixed_version is None

  def version_dir(self, version: int) -> Path:
    return self.path / str(version) if self.follows_base else self.path

  def newest_candidate(self) -> int | None:
    """The highest complete version not known to be broken, or None."""
    if not self.follows_base:
      return None if self._fixed_version in self._failed else self._fixed_version
    for version in reversed(existing_versions(self.path)):
      directory = self.path / str(version)
      if is_saved_model(directory) and self._failed.get(version) != _mtime(directory):
        return version
    return None

  def load_initial(self):
    """Loads the version to serve first (the newest that loads), or KmnistError."""
    while True:
      version = self.newest_candidate()
      if version is None:
        raise KmnistError(
          f"--model={self.path}: no version could be loaded "
          f"({self._failure_summary()}); serve an export written by kmnist-train"
        )
      if self.load_and_swap(version):
        return self.current

  def load_and_swap(self, version: int) -> bool:
    """Loads `version` and serves it. False (and the status says why) if it does not load."""
    directory = self.version_dir(version)
    with self._lock:
      self._states[version] = (LOADING, "")
    start = time.perf_counter()
    try:
      servable = self._loader(directory, version)
    except Exception as e:  # A bad version must not stop the server: reported, the old one stays.
      reason = str(e) if isinstance(e, KmnistError) else f"{e.__class__.__name__}: {e}"
      with self._lock:
        self._states[version] = (END, reason)
        self._failed[version] = _mtime(directory)
      serving = self.current.version if self.current else "nothing"
      logger.warning("version %d failed to load, still serving %s: %s", version, serving, reason)
      return False
    with self._lock:
      old, self.current = self.current, servable  # the swap: new requests get the new version
      self._states[version] = (AVAILABLE, "")
      if old is not None and old.version != version:
        self._states[old.version] = (END, "")
      self._forget_old_states()
    seconds = time.perf_counter() - start
    released = f"; version {old.version} released" if old is not None else ""
    logger.info(
      "serving version %d from %s (loaded in %.2f s)%s", version, directory, seconds, released
    )
    del old
    gc.collect()  # a loaded SavedModel holds reference cycles: free the old one now
    return True

  def poll_once(self) -> None:
    """One look at the base path: serve its newest loadable version if that is another one."""
    version = self.newest_candidate()
    if version is None:
      if self.current is not None and not self._warned_empty:
        logger.warning(
          "no loadable version left under %s; still serving version %d",
          self.path,
          self.current.version,
        )
        self._warned_empty = True
      return
    self._warned_empty = False
    if self.current is None or version != self.current.version:
      self.load_and_swap(version)

  def start(self) -> None:
    """Starts following the base path (a single version directory is not followed)."""
    if self.poll_seconds > 0 and self._thread is None:
      self._thread = threading.Thread(
        target=self._poll_loop, name="kmnist-version-poller", daemon=True
      )
      self._thread.start()

  def stop(self) -> None:
    self._stop.set()
    if self._thread is not None and self._thread is not threading.current_thread():
      self._thread.join(timeout=60)

  def _poll_loop(self) -> None:
    while not self._stop.wait(self.poll_seconds):
      try:
        self.poll_once()
      except Exception:  # e.g. the base vanished for a moment: the next poll tries again
        logger.exception("polling %s failed; still serving", self.path)

  def status(self, version: int | None = None) -> list[dict]:
    """TF Serving's model_version_status entries, newest version first."""
    with self._lock:
      states = dict(self._states)
    return [
      {
        "version": str(v),
        "state": state,
        "status": {"error_code": "UNKNOWN" if error else "OK", "error_message": error},
      }
      for v, (state, error) in sorted(states.items(), reverse=True)
      if version is None or v == version
    ]

  def _forget_old_states(self) -> None:
    ended = sorted(v for v, (state, _) in self._states.items() if state == END)
    for version in ended[:-KEEP_ENDED]:
      del self._states[version]

  def _failure_summary(self) -> str:
    failures = [f"version {v}: {error}" for v, (_, error) in sorted(self._states.items()) if error]
    return "; ".join(failures) or "none found"


def _mtime(directory: Path) -> int:
  try:
    return directory.stat().st_mtime_ns
  except OSError:
    return -1
