"""The optional API key (--api_key_file): requests must carry one of the file's keys.

REST: `Authorization: Bearer <key>`; gRPC: the same in the call's metadata (`authorization`).
Compared in constant time (hmac.compare_digest, against every key). The health probes, the page
and its static files stay open: load balancers and browsers reach them without a key, and the page
asks for the key once (on its first 401) and keeps it for its own origin. Off by default: on
127.0.0.1 only this machine can reach the server; beyond it, use a key, and https (web/tls.py), so
the key does not cross the network in clear. No TensorFlow here.
"""

import hmac
from pathlib import Path

from kmnist.util.errors import KmnistError, one_line

# Paths that never need the key: the probes, the page and its files (REST).
OPEN_PATHS = ("/v2/health/", "/static/")
OPEN_EXACT = ("/", "/sw.js", "/favicon.ico")
# gRPC methods that never need it: Open Inference's probes.
OPEN_METHODS = ("ServerLive", "ServerReady", "ModelReady")


def read(path) -> tuple[bytes, ...]:
  """The keys of a --api_key_file (one per line, blank lines and # comments skipped)."""
  try:
    text = Path(path).read_text()
  except (OSError, UnicodeDecodeError) as e:
    raise KmnistError(f"--api_key_file={path} cannot be read ({one_line(e)})") from None
  keys = [line.strip() for line in text.splitlines()]
  keys = [key for key in keys if key and not key.startswith("#")]
  if not keys:
    raise KmnistError(f"--api_key_file={path} holds no key; put one key per line")
  short = [i for i, key in enumerate(keys, 1) if len(key) < 16 or " " in key]
  if short:
    raise KmnistError(
      f"--api_key_file={path}: key {short[0]} is shorter than 16 characters or holds a space; "
      "make keys with e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
    )
  return tuple(key.encode() for key in keys)


def is_open(path: str) -> bool:
  return path in OPEN_EXACT or path.startswith(OPEN_PATHS)


class Keys:
  def __init__(self, keys: tuple[bytes, ...]):
    self.keys = keys

  def allows(self, authorization: str | None) -> bool:
    """Whether an Authorization value is `Bearer <one of the keys>`, in constant time."""
    scheme, _, given = (authorization or "").partition(" ")
    given_bytes = given.strip().encode()
    matches = [hmac.compare_digest(given_bytes, key) for key in self.keys]  # every key, always
    return scheme.lower() == "bearer" and any(matches)


MISSING = (
  "this server needs an API key: send Authorization: Bearer <key> (a key of kmnist-serve's "
  "--api_key_file)"
)
