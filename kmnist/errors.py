"""The one exception type that means "the user can fix this": entrypoints print it as one line and exit 2."""


class KmnistError(Exception):
  """A problem with the user's input or environment, worded to name the problem and the fix."""
