"""Users' .npy arrays of digits: every shape and scale kmnist-predict takes, and any file at all
(any dtype, any shape, a header that lies, bytes edited or cut) answered digit by digit in one
line each, in memory that does not grow with the file.

The fuzzing tests generate their inputs with Hypothesis (fixed budget, derandomized: conftest.py).
"""

import io
import tracemalloc

import byte_edits
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kmnist.predict import arrays, images
from kmnist.util.errors import KmnistError


def read_all(path):
  """Every name, digit and error line of `path`, or the KmnistError of its header."""
  names, digits, errors = [], [], []
  for more_names, more_digits, more_errors in arrays.read_digits(path):
    assert more_digits.dtype == np.uint8 and more_digits.shape[1:] == (28, 28)
    assert len(more_names) == len(more_digits)
    names += more_names
    digits += list(more_digits)
    errors += more_errors
  return names, digits, errors


@pytest.mark.parametrize(
  "shape, scale",
  [((28, 28), 1), ((3, 28, 28), 1), ((784,), 1 / 255), ((2, 784), 1 / 255)],
  ids=["one digit", "digits", "one flat, floats", "flat digits, floats"],
)
def test_npy_shapes_and_scales(tmp_path, mnist_digits, shape, scale):
  count = int(np.prod(shape)) // 784
  digits = mnist_digits.images[:count]
  dtype = np.float32 if scale != 1 else np.int64
  np.save(tmp_path / "a.npy", (digits * scale).astype(dtype).reshape(shape))
  names, read, errors = read_all(tmp_path / "a.npy")
  np.testing.assert_array_equal(read, digits)
  assert errors == []
  path = str(tmp_path / "a.npy")
  assert names == ([path] if count == 1 else [f"{path}[{i}]" for i in range(count)])


@pytest.mark.parametrize(
  "array, message",
  [
    (np.zeros((5,)), r"array of shape \(5,\) is not digits"),
    (np.zeros((2, 27, 28)), r"array of shape \(2, 27, 28\) is not digits"),
    (np.zeros((0, 784)), r"array of shape \(0, 784\) is not digits"),
    (np.full((1, 3), "a"), r"<U1 pixels must be integers 0-255 or floats in \[0, 1\]"),
    (np.zeros((28, 28), bool), r"bool pixels must be integers 0-255"),
    (np.zeros((28, 28), complex), r"complex128 pixels must be integers 0-255"),
    (np.array([None] * 784), r"object pixels must be integers 0-255"),
  ],
)
def test_what_is_not_digits_is_named_before_any_pixel_is_read(tmp_path, array, message):
  np.save(tmp_path / "a.npy", array)
  with pytest.raises(KmnistError, match=f"a.npy: {message}"):
    arrays.open_npy(tmp_path / "a.npy")


def test_each_bad_digit_is_named_and_the_others_kept(tmp_path, mnist_digits):
  digits = mnist_digits.images[:6].astype(np.float64) / 255
  digits[1, 0, 0] = 3.0  # out of range
  digits[2, 5, 5] = np.nan
  digits[3] = 0  # blank
  digits[4] = np.random.default_rng(0).random((28, 28))  # noise
  np.save(tmp_path / "a.npy", digits)
  names, read, errors = read_all(tmp_path / "a.npy")
  path = tmp_path / "a.npy"
  assert names == [f"{path}[0]", f"{path}[5]"]
  np.testing.assert_array_equal(read, mnist_digits.images[[0, 5]])
  assert [e.split(": ", 1)[0] for e in errors] == [f"{path}[{i}]" for i in (1, 2, 3, 4)]
  assert "float pixels must be in [0, 1]" in errors[0] and "float pixels" in errors[1]
  assert "the picture is blank" in errors[2] and "the picture is noise, not a digit" in errors[3]


def test_blank_and_noise_are_named_in_the_same_words_as_pictures(tmp_path):
  from PIL import Image

  rng = np.random.default_rng(1)
  for kind, sheet in (
    ("blank", np.full((28, 28), 9, np.uint8)),
    ("noise", rng.integers(0, 256, (28, 28)).astype(np.uint8)),
  ):
    np.save(tmp_path / f"{kind}.npy", sheet)
    Image.fromarray(sheet).save(tmp_path / f"{kind}.png")
    _, _, (from_array,) = read_all(tmp_path / f"{kind}.npy")
    with pytest.raises(KmnistError) as from_picture:
      images.load_png(tmp_path / f"{kind}.png")
    assert from_array.split(": ", 1)[1] == str(from_picture.value).split(": ", 1)[1]


def test_after_ten_bad_digits_the_rest_are_counted(tmp_path):
  np.save(tmp_path / "a.npy", np.zeros((25, 28, 28), np.uint8))
  names, _, errors = read_all(tmp_path / "a.npy")
  assert names == [] and len(errors) == arrays.MAX_DIGIT_ERRORS + 1
  assert errors[-1] == f"{tmp_path / 'a.npy'}: 15 more digits refused"


def npy_header(shape, dtype="<f8", fortran=False) -> bytes:
  buffer = io.BytesIO()
  header = {"descr": dtype, "fortran_order": fortran, "shape": shape}
  np.lib.format.write_array_header_1_0(buffer, header)
  return buffer.getvalue()


@pytest.mark.parametrize(
  "shape, data_bytes",
  [((10**12, 784), 100), ((3, 28, 28), 3 * 784 * 8 - 1), ((1, 784), 784 * 8 + 1)],
  ids=["a terabyte claimed", "cut", "too long"],
)
def test_a_header_that_lies_about_the_size_is_refused_in_bounded_memory(
  tmp_path, shape, data_bytes
):
  (tmp_path / "a.npy").write_bytes(npy_header(shape) + bytes(data_bytes))
  tracemalloc.start()
  try:
    with pytest.raises(
      KmnistError,
      match=r"its header says [\d,]+ digits of float64 .* bytes follow it; the file is truncated",
    ):
      read_all(tmp_path / "a.npy")
    peak = tracemalloc.get_traced_memory()[1]
  finally:
    tracemalloc.stop()
  assert peak < (tmp_path / "a.npy").stat().st_size + 2**20  # nothing the header claims


def test_memory_does_not_grow_with_the_file(tmp_path, mnist_digits):
  peaks = []
  for count in (2 * arrays.CHUNK, 20 * arrays.CHUNK):
    digits = np.resize(mnist_digits.images, (count, 28, 28)).astype(np.float32) / 255
    np.save(tmp_path / "a.npy", digits)
    tracemalloc.start()
    try:
      for _ in arrays.read_digits(tmp_path / "a.npy"):  # as kmnist-predict reads: chunk by chunk
        pass
      peaks.append(tracemalloc.get_traced_memory()[1])
    finally:
      tracemalloc.stop()
  assert peaks[1] < 1.2 * peaks[0]  # ten times the file, the same peak: a chunk's worth
  assert peaks[1] < (tmp_path / "a.npy").stat().st_size / 3


def test_a_big_fortran_ordered_array_is_refused_a_small_one_read(tmp_path, mnist_digits):
  np.save(tmp_path / "small.npy", np.asfortranarray(mnist_digits.images[:5]))
  np.testing.assert_array_equal(read_all(tmp_path / "small.npy")[1], mnist_digits.images[:5])
  count = arrays.MAX_FORTRAN_BYTES // 784 + 1
  (tmp_path / "big.npy").write_bytes(npy_header((count, 784), "|u1", True) + bytes(count * 784))
  with pytest.raises(KmnistError, match="a Fortran-ordered array is read whole"):
    arrays.open_npy(tmp_path / "big.npy")


DIGIT_SHAPES = st.sampled_from([(28, 28), (784,), (1, 28, 28), (3, 28, 28), (2, 784), (0, 784)])
ANY_SHAPE = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=30)
ANY_DTYPE = st.one_of(
  hnp.scalar_dtypes(),
  hnp.byte_string_dtypes(),
  hnp.unicode_string_dtypes(),
  hnp.array_dtypes(allow_subarrays=True),
)


@settings(max_examples=120)
@given(
  array=hnp.arrays(dtype=ANY_DTYPE, shape=st.one_of(DIGIT_SHAPES, ANY_SHAPE))
  | hnp.arrays(np.uint8, DIGIT_SHAPES)
  | hnp.arrays(np.float32, DIGIT_SHAPES)
)
def test_any_dtype_and_shape_gives_digits_or_one_line_per_problem(tmp_path_factory, array):
  path = tmp_path_factory.mktemp("fuzz") / "a.npy"
  np.save(path, array)
  try:
    names, digits, errors = read_all(path)
  except KmnistError as e:
    assert str(e).startswith(f"{path}: ") and "\n" not in str(e)
    return
  assert all(e.startswith(str(path)) and "\n" not in e for e in errors)
  refused = len([e for e in errors if not e.endswith("more digits refused")])
  refused += sum(int(e.split(": ")[-1].split()[0]) for e in errors if e.endswith("more refused"))
  assert len(names) + refused == arrays.digit_count(array.shape)  # every digit: kept or named


@settings(max_examples=150)
@given(
  edits=byte_edits.EDITS,
  header_only=st.booleans(),
)
def test_edited_and_cut_files_are_named_never_a_traceback(
  tmp_path_factory, mnist_digits, edits, header_only
):
  buffer = io.BytesIO()
  np.save(buffer, mnist_digits.images[:3])
  original = buffer.getvalue()
  if header_only:  # aim the edits at the header, where the lies are
    header = original[:128]
    data = byte_edits.mutated(header, edits) + original[128:]
  else:
    data = byte_edits.mutated(original, edits)
  path = tmp_path_factory.mktemp("fuzz") / "a.npy"
  path.write_bytes(data)
  try:
    names, digits, errors = read_all(path)
  except KmnistError as e:
    assert str(e).startswith(f"{path}: ") and "\n" not in str(e)
    return
  assert len(digits) + len(errors) >= 1
