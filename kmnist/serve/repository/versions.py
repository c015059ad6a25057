"""TF Serving's version handling for one model: poll the base path, serve what the policy names.

A poller thread lists the base every `poll_seconds` (TF Serving's --file_system_poll_wait_seconds);
the policy (version_policy.py) names the complete versions to serve. One not loaded yet is loaded
and warmed up on that thread while the loaded ones answer; then the served set is swapped with one
assignment and versions no longer named are released. A request takes its servable once, so it
finishes on the version it started with. It names a version, a label (version_labels), or neither:
the highest served version. A version that fails to load is reported in the status and not retried
until its directory changes. No TensorFlow here: the loader is passed in, so the command line can
check --model with `resolve` before TensorFlow starts.
"""

import gc
import logging
import threading
import time
from pathlib import Path

from kmnist.serve.repository.version_policy import LATEST, Policy, resolve
from kmnist.util.errors import KmnistError
from kmnist.util.files import saved_model_versions

logger = logging.getLogger("kmnist.serve")

# TF Serving's ServableState names, as its model status API reports them.
LOADING, AVAILABLE, END = "LOADING", "AVAILABLE", "END"
KEEP_ENDED = 10  # ended versions kept in the status, newest first


class VersionNotFoundError(Exception):
  """A request for a version this server does not serve (TF Serving: NOT_FOUND, HTTP 404)."""


class UnknownLabelError(Exception):
  """A request for a version label the model does not have (TF Serving: INVALID_ARGUMENT, 400)."""


class VersionManager:
  """The served versions of one model, its labels, and the history TF Serving's status reports."""

  def __init__(
    self,
    model_path,
    loader,
    poll_seconds: float = 1.0,
    policy: Policy = LATEST,
    name: str = "kmnist",
    where: str | None = None,
  ):
    """`loader(directory, version)` returns a ready servable or raises; `where` names the model."""
    self.path, self._fixed_version = resolve(model_path)
    self.poll_seconds = poll_seconds if self._fixed_version is None else 0
    self.policy = policy
    self.name = name
    self.where = where or f"--model={self.path}"
    self.labels: dict[str, int] = {}  # replaced whole, never changed in place
    self._loader = loader
    self._served: dict[int, object] = {}  # version -> servable; replaced whole by the swap
    self._states: dict[int, tuple[str, str]] = {}  # version -> (state, error message)
    self._failed: dict[int, int] = {}  # version -> its directory's mtime when it failed
    self._lock = threading.Lock()  # guards _states and the swap; requests only read _served
    self._polling = threading.Lock()  # one poll at a time (the poller, a config reload)
    self._stop = threading.Event()
    self._thread: threading.Thread | None = None
    self._warned_empty = False

  @property
  def follows_base(self) -> bool:
    return self._fixed_version is None

  @property
  def current(self):
    """The servable of the highest served version (what a request naming none gets), or None."""
    served = self._served
    return served[max(served)] if served else None

  def served_versions(self) -> list[int]:
    return sorted(self._served)

  def servable(self, version: int | None = None, label: str | None = None):
    """The servable a request names by version, by label, or neither (the highest served)."""
    served = self._served  # read once: one consistent set for the whole request
    if label is not None:
      version = self.label_version(label)
    if version is None and served:
      return served[max(served)]
    if version not in served:
      numbers = ", ".join(map(str, sorted(served))) or "none"
      raise VersionNotFoundError(
        f"Servable not found for request: Specific({self.name}, {version}); this server "
        f"serves version{'s' if len(served) > 1 else ''} {numbers} of {self.name}"
      )
    return served[version]

  def label_version(self, label: str) -> int:
    """The version a label names (TF Serving's version_labels), or UnknownLabelError."""
    version = self.labels.get(label)
    if version is None:
      known = ", ".join(f"'{k}'" for k in sorted(self.labels)) or "none"
      raise UnknownLabelError(
        f"Unrecognized servable version label: {label} (model {self.name} has labels: {known})"
      )
    return version

  def version_dir(self, version: int) -> Path:
    return self.path / str(version) if self.follows_base else self.path

  def found_versions(self) -> list[int]:
    """The complete versions under the base (the version directory alone, if given one)."""
    if not self.follows_base:
      return [self._fixed_version]
    return saved_model_versions(self.path)

  def aspired(self) -> list[int]:
    """The versions the policy serves among those found and not known to be broken."""
    found = [
      v for v in self.found_versions() if self._failed.get(v, None) != _mtime(self.version_dir(v))
    ]
    return self.policy.aspired(found) if self.follows_base else found

  def load_initial(self):
    """Loads the versions to serve first (falling back past broken ones), or KmnistError."""
    while not self._served:
      if not self.aspired():
        raise KmnistError(
          f"{self.where}: no version could be loaded ({self._failure_summary()}); serve an "
          "export written by kmnist-train"
        )
      self.poll_once()
    return self.current

  def set_policy(self, policy: Policy) -> None:
    """A new version policy (a changed config file); the next poll applies it."""
    self.policy = policy

  def poll_once(self) -> None:
    """One look at the base path: load what the policy names and is not loaded, then swap."""
    with self._polling:
      wanted = self.aspired()
      if not wanted:
        if self._served and not self._warned_empty:
          serving = ", ".join(map(str, self.served_versions()))
          logger.warning(
            "no loadable version of %s left under %s; still serving %s",
            self.name,
            self.path,
            serving,
          )
          self._warned_empty = True
        return
      self._warned_empty = False
      served = self._served
      new = {v: served[v] if v in served else self._load(v) for v in wanted}
      new = {v: s for v, s in new.items() if s is not None}
      if new.keys() != served.keys() and new:
        self._swap(new)

  def _load(self, version: int):
    """The loaded servable of `version`, or None (and the status says why)."""
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
      serving = ", ".join(map(str, self.served_versions())) or "nothing"
      logger.warning(
        "version %d of %s failed to load, still serving %s: %s", version, self.name, serving, reason
      )
      return None
    took = time.perf_counter() - start
    logger.info(
      "serving version %d of %s from %s (loaded in %.2f s)", version, self.name, directory, took
    )
    return servable

  def _swap(self, new: dict) -> None:
    with self._lock:
      old, self._served = self._served, new  # the swap: new requests see the new set
      for version in new:
        self._states[version] = (AVAILABLE, "")
      released = sorted(set(old) - set(new))
      for version in released:
        self._states[version] = (END, "")
      for version in sorted(v for v, (state, _) in self._states.items() if state == END)[
        :-KEEP_ENDED
      ]:
        del self._states[version]
    if released:
      logger.info("%s: version %s released", self.name, ", ".join(map(str, released)))
    del old
    gc.collect()  # a loaded SavedModel holds reference cycles: free released ones now

  def start(self) -> None:
    """Starts following the base path (a single version directory is not followed)."""
    if self.poll_seconds > 0 and self._thread is None:
      self._thread = threading.Thread(
        target=self._poll_loop, name=f"kmnist-versions-{self.name}", daemon=True
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

  def status(self, version: int | None = None, label: str | None = None) -> list[dict]:
    """TF Serving's model_version_status entries, newest first: of every version, of `version`,
    or of the version `label` names (REST and gRPC alike); VersionNotFoundError if this server
    never saw that version."""
    if label is not None:
      version = self.label_version(label)
    with self._lock:
      states = dict(self._states)
    statuses = [
      {
        "version": str(v),
        "state": state,
        "status": {"error_code": "UNKNOWN" if error else "OK", "error_message": error},
      }
      for v, (state, error) in sorted(states.items(), reverse=True)
      if version is None or v == version
    ]
    if not statuses:
      raise VersionNotFoundError(f"Could not find version {version} of model {self.name}")
    return statuses

  def _failure_summary(self) -> str:
    failures = [f"version {v}: {error}" for v, (_, error) in sorted(self._states.items()) if error]
    found = ", ".join(map(str, self.found_versions())) or "none"
    return "; ".join(failures) or f"it serves {self.policy.describe()}; versions found: {found}"


def _mtime(directory: Path) -> int:
  try:
    return directory.stat().st_mtime_ns
  except OSError:
    return -1
