"""Which versions of a model to serve: what a --model path names, and TF Serving's
ServableVersionPolicy for a base path.

As file_system_storage_path_source.proto defines it and FileSystemStoragePathSource applies it:
  latest { num_versions: N }  the N highest versions found (N = 0 counts as 1); the default, N = 1
  all {}                      every version found
  specific { versions: ... }  those of the listed versions that are found (a missing one is not an
                              error: it is served once it appears)
A request that names no version is answered by the highest version served (TF Serving's
ServableRequest::Latest). No TensorFlow here.
"""

import dataclasses
from pathlib import Path

from kmnist.util.errors import KmnistError
from kmnist.util.files import is_saved_model, saved_model_versions


@dataclasses.dataclass(frozen=True)
class Policy:
  """One of TF Serving's three policies: kind "latest" (with `num_versions`), "all" or "specific"
  (with `versions`)."""

  kind: str = "latest"
  num_versions: int = 1
  versions: tuple[int, ...] = ()

  def aspired(self, found: list[int]) -> list[int]:
    """The versions to serve among `found` (ascending), ascending."""
    found = sorted(found)
    if self.kind == "all":
      return found
    if self.kind == "specific":
      return [v for v in found if v in self.versions]
    return found[-max(self.num_versions, 1) :] if found else []

  def describe(self) -> str:
    if self.kind == "all":
      return "all versions"
    if self.kind == "specific":
      return "specific versions " + ", ".join(map(str, sorted(self.versions)))
    n = max(self.num_versions, 1)
    return "the latest version" if n == 1 else f"the latest {n} versions"


LATEST = Policy()


def from_proto(policy) -> Policy:
  """A Policy from TF Serving's FileSystemStoragePathSourceConfig.ServableVersionPolicy message
  (unset: latest 1, as TF Serving's default)."""
  choice = policy.WhichOneof("policy_choice")
  if choice == "all":
    return Policy("all")
  if choice == "specific":
    return Policy("specific", versions=tuple(sorted(set(policy.specific.versions))))
  if choice == "latest":
    return Policy("latest", num_versions=max(policy.latest.num_versions, 1))
  return LATEST


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
  if path.is_dir() and saved_model_versions(path):
    return path, None
  raise KmnistError(
    f"--model={model_path} is neither a SavedModel version directory (with "
    f"saved_model.pb) nor a base directory holding one (like exported/saved_model)"
    f"; train one with kmnist-train"
  )
