"""The shipped MNIST files and the check of a --manual_dir: genuine files pass, anything else is
named."""

import hashlib
import shutil

import pytest

from kmnist.data import mnist_files
from kmnist.util.errors import KmnistError


def test_vendored_files_are_the_genuine_mnist():
  sums = mnist_files.expected_checksums()
  assert sorted(sums) == sorted(mnist_files.MNIST_FILES)
  for name in mnist_files.MNIST_FILES:
    assert hashlib.sha256((mnist_files.VENDORED_DIR / name).read_bytes()).hexdigest() == sums[name]
  assert mnist_files.check_manual_dir(mnist_files.VENDORED_DIR) == mnist_files.VENDORED_DIR


@pytest.mark.parametrize(
  "damage, message",
  [
    ("missing", "train-labels-idx1-ubyte.gz is missing; put the four original MNIST .gz files"),
    ("truncated", "train-labels-idx1-ubyte.gz is corrupted or truncated"),
    ("corrupted", "train-labels-idx1-ubyte.gz is corrupted or truncated"),
  ],
)
def test_a_damaged_manual_file_is_named(tmp_path, damage, message):
  for name in mnist_files.MNIST_FILES:
    shutil.copy(mnist_files.VENDORED_DIR / name, tmp_path / name)
  victim = tmp_path / "train-labels-idx1-ubyte.gz"
  if damage == "missing":
    victim.unlink()
  elif damage == "truncated":
    victim.write_bytes(victim.read_bytes()[:1000])
  else:
    content = bytearray(victim.read_bytes())
    content[len(content) // 2] ^= 0xFF  # one flipped byte, same size
    victim.write_bytes(bytes(content))
  with pytest.raises(KmnistError, match=message):
    mnist_files.check_manual_dir(tmp_path)
