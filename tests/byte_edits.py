"""Edits to a valid file's bytes, for the fuzzing tests of pictures and arrays: Hypothesis draws up
to three flips, cuts and insertions at any place, and `mutated` applies them."""

from hypothesis import strategies as st

EDITS = st.lists(
  st.tuples(
    st.sampled_from(["flip", "cut", "insert"]),
    st.floats(0, 1, exclude_max=True),  # where, as a fraction of the length
    st.integers(0, 255),
  ),
  min_size=1,
  max_size=3,
)


def mutated(data: bytes, edits) -> bytes:
  data = bytearray(data)
  for kind, where, value in edits:
    at = int(where * len(data))
    if kind == "flip":
      data[at % len(data)] ^= value or 1
    elif kind == "cut":
      del data[at:]
    else:  # insert
      data[at:at] = bytes([value]) * 4
    if not data:
      break
  return bytes(data)
