"""The models served, from --model or TF Serving's model config file, kept in step with the file.

As TF Serving realizes a config (ServerCore::ReloadConfig): models new to the config are loaded
(their versions as their policy says) while the others answer, and only then added; a model
whose base path changed is loaded anew and swapped in; a changed policy is applied by the model's
own version poller; models no longer listed are removed; labels are set once the versions they
name are loaded (TF Serving allows labels only on available versions). A request in flight
finishes on the model and version it started with, so a change fails no request.

With --model_config_file_poll_wait_seconds > 0 the file is read again that often; a change that
cannot be served (a parse error, a bad entry, a model that does not load) is logged in one line
and the running config is kept until the file changes again.
"""

import logging
import threading
from pathlib import Path

from kmnist.serve.repository import model_config
from kmnist.serve.repository.versions import VersionManager
from kmnist.util.errors import KmnistError, one_line

logger = logging.getLogger("kmnist.serve")


class ServedModels:
  """Applies model lists to kserve's ModelRepository. `make_model(name, versions)` makes the
  kserve.Model of a loaded VersionManager; `loader` loads one version (versions.py)."""

  def __init__(self, repository, loader, make_model, poll_seconds: float, source=None):
    self._repository = repository
    self._loader = loader
    self._make_model = make_model
    self._poll_seconds = poll_seconds
    self._source = source  # "--model_config_file=<path>", or None for --model
    self._entries: dict = {}  # name -> model_config.ModelEntry, as served
    self._started = False
    self._stop = threading.Event()
    self._thread = None
    self._seen = None  # the config file's bytes last read
    self._error = None  # the last error logged, not repeated
    self._pending: dict = {}  # name -> entry whose labels wait for a version to serve

  @property
  def names(self) -> list[str]:
    return list(self._entries)

  def logging_of(self, name: str):
    """The request log settings of model `name` (None: not logged)."""
    entry = self._entries.get(name)
    return entry.logging if entry is not None else None

  def versions(self, name: str) -> VersionManager:
    return self._repository.get_model(name).versions

  def apply(self, entries: list) -> None:
    """Serves exactly `entries`; KmnistError (and nothing changed) if a new model cannot load.
    A label naming a version that did not load is KmnistError before start, logged after."""
    fresh = {}
    for entry in entries:
      old = self._entries.get(entry.name)
      if old is None or old.base_path != entry.base_path:
        manager = VersionManager(
          entry.base_path,
          self._loader,
          self._poll_seconds,
          entry.policy,
          entry.name,
          where=entry.where(self._source),
        )
        manager.load_initial()  # KmnistError: nothing is changed yet
        fresh[entry.name] = manager
    for entry in entries:
      old = self._entries.get(entry.name)
      if entry.name not in fresh and old.policy != entry.policy:
        manager = self.versions(entry.name)
        manager.set_policy(entry.policy)
        manager.poll_once()
    for entry in entries:
      self._set_labels(entry, fresh.get(entry.name) or self.versions(entry.name))
    for name, manager in fresh.items():
      replaced = self._repository.get_model(name)
      self._repository.update(self._make_model(name, manager))
      if self._started:
        manager.start()
      if replaced is not None:
        replaced.stop()
    listed = {entry.name for entry in entries}
    for name in [name for name in self._entries if name not in listed]:
      self._repository.unload(name)  # stops its poller; requests in flight finish
    self._entries = {entry.name: entry for entry in entries}

  def _set_labels(self, entry, manager: VersionManager) -> None:
    served = manager.served_versions()
    wrong = [(label, version) for label, version in entry.labels if version not in served]
    if wrong:  # TF Serving's words
      label, version = wrong[0]
      message = (
        f"{entry.where(self._source)}: Request to assign label to version {version} of model "
        f"{entry.name}, which is not currently available for inference (label '{label}'; "
        f"served: {', '.join(map(str, served))})"
      )
      if not self._started:
        raise KmnistError(message)
      if self._pending.get(entry.name) != entry:  # said once; retried until the version serves
        logger.error("%s; its labels stay as they were until it is", message)
      self._pending[entry.name] = entry
      return
    if self._pending.pop(entry.name, None) is not None:
      logger.info("model %s: version labels %s applied", entry.name, dict(entry.labels))
    manager.labels = dict(entry.labels)

  def retry_labels(self) -> None:
    """Labels that named a version still loading: set once it serves (each config poll)."""
    for name, entry in list(self._pending.items()):
      if self._entries.get(name) == entry:
        self._set_labels(entry, self.versions(name))
      else:  # the config changed since: its own labels were applied with it
        self._pending.pop(name, None)

  def start(self, config_path=None, config_poll_seconds: float = 0) -> None:
    """Starts every model's version poller, and the config file's if it is to be polled."""
    self._started = True
    for name in self._entries:
      self.versions(name).start()
    if config_path is not None and config_poll_seconds > 0:
      self._seen = Path(config_path).read_bytes()
      self._thread = threading.Thread(
        target=self._poll_config,
        args=(config_path, config_poll_seconds),
        name="kmnist-model-config",
        daemon=True,
      )
      self._thread.start()

  def stop(self) -> None:
    self._stop.set()
    if self._thread is not None:
      self._thread.join(timeout=60)

  def _poll_config(self, path, seconds: float) -> None:
    while not self._stop.wait(seconds):
      self.reload_config(path)
      self.retry_labels()

  def reload_config(self, path) -> bool:
    """Reads the config file again and serves what it lists, if it changed; True if it did."""
    try:
      data = Path(path).read_bytes()
      if data == self._seen:
        return False
      self._seen = data
      entries = model_config.read(path)
      if entries == list(self._entries.values()):
        self._error = None  # back to what serves (a revert): the same fault is logged again
        return False
      self.apply(entries)
    except Exception as e:  # whatever it is, the running models keep answering
      message = str(e) if isinstance(e, KmnistError) else one_line(e)
      if message != self._error:
        logger.error(
          "model config not applied, still serving %s: %s", ", ".join(self.names), message
        )
      self._error = message
      return False
    self._error = None
    logger.info("model config reloaded: serving %s", ", ".join(self.names))
    return True
