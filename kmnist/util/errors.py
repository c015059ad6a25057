"""The one exception type that means "the user can fix this", and errors shown in one line."""

import re


class KmnistError(Exception):
  """A problem with the user's input or environment, worded to name the problem and the fix."""


def one_line(error: BaseException, limit: int = 300) -> str:
  """`Type: first line of the message`, for errors from libraries whose messages run to pages.

  TensorFlow's messages carry graph-node prefixes (`{{node ...}}`) and converter errors pages of
  MLIR; the first line is what names the problem.
  """
  text = re.sub(r"\{\{[^}]*\}\}\s*", "", getattr(error, "message", None) or str(error))
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  shown = f"{type(error).__name__}: {lines[0] if lines else 'no message'}"
  return shown if len(shown) <= limit else shown[: limit - 3] + "..."
