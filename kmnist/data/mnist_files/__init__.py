"""The four original MNIST files shipped in kmnist, their checksums, and the --manual_dir check.

Light on purpose (no TensorFlow): the command line checks a user's --manual_dir before TensorFlow
starts.
"""

import hashlib
from pathlib import Path

from kmnist.util.errors import KmnistError

MNIST_FILES = (
  "train-images-idx3-ubyte.gz",
  "train-labels-idx1-ubyte.gz",
  "t10k-images-idx3-ubyte.gz",
  "t10k-labels-idx1-ubyte.gz",
)
# The files ship inside the package, so a fresh install trains with no network.
VENDORED_DIR = Path(__file__).resolve().parent


def expected_checksums() -> dict[str, str]:
  """sha256 of the genuine files, as TFDS records them (from the vendored SHA256SUMS)."""
  sums = {}
  for line in (VENDORED_DIR / "SHA256SUMS").read_text().splitlines():
    if line.strip():
      digest, name = line.split()
      sums[name] = digest
  return sums


def check_manual_dir(manual_dir) -> Path:
  """Fails fast, naming the file, unless `manual_dir` holds the four genuine MNIST files.

  TFDS would otherwise fall back to downloading, which offline retries for minutes before failing.
  """
  manual_dir = Path(manual_dir).expanduser()
  sums = expected_checksums()
  for name in MNIST_FILES:
    path = manual_dir / name
    if not path.is_file():
      raise KmnistError(
        f"MNIST file {path} is missing; put the four original MNIST .gz files "
        f"({', '.join(MNIST_FILES)}) "
        f"in --manual_dir, or leave --manual_dir unset to use the copies shipped with kmnist"
      )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sums[name]:
      raise KmnistError(
        f"MNIST file {path} is corrupted or truncated (sha256 {digest[:12]}..., expected "
        f"{sums[name][:12]}...); "
        f"replace it with the original file, or reinstall kmnist to restore the shipped copy"
      )
  return manual_dir
