"""One-line error reports: the type and the first line that says something, without TensorFlow's
node prefixes."""

import tensorflow as tf

from kmnist.util.errors import one_line


def test_one_line_keeps_the_type_and_the_first_line():
  assert (
    one_line(RuntimeError("\n  op not supported\n<pages of MLIR>"))
    == "RuntimeError: op not supported"
  )
  assert one_line(ValueError()) == "ValueError: no message"


def test_one_line_drops_tensorflows_node_prefix_and_caps_the_length():
  error = tf.errors.UnavailableError(
    None, None, "{{function_node __wrapped__X}} Socket closed\nmore"
  )
  assert one_line(error) == "UnavailableError: Socket closed"
  long = one_line(OSError("x" * 1000))
  assert len(long) == 300 and long.endswith("...")
