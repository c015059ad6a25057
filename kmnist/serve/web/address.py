"""The address kmnist-serve listens on: checked free before TensorFlow loads, and written into
URLs (an IPv6 address in brackets). No TensorFlow here.
"""

import errno
import socket

from kmnist.util.errors import KmnistError


def in_url(host: str) -> str:
  """`host` as it stands in a URL or a gRPC target: ::1 becomes [::1]."""
  return f"[{host}]" if ":" in host else host


def check_port_free(host: str, port: int, flag: str) -> None:
  """Fails now, naming the flag, if host:port cannot be listened on (in use, or not ours)."""
  try:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
  except socket.gaierror as e:
    raise KmnistError(
      f"--host={host} is not an address of this machine ({e.strerror}); give "
      f"e.g. 127.0.0.1 or 0.0.0.0"
    ) from None
  family, kind, proto, _, address = infos[0]
  with socket.socket(family, kind, proto) as probe:
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is fine
    try:
      probe.bind(address)
    except OSError as e:
      if e.errno == errno.EADDRINUSE:
        raise KmnistError(
          f"--{flag}={port}: port {port} on {host} is in use (another "
          f"kmnist-serve or TF Serving?); stop it or pass another --{flag}"
        ) from None
      if e.errno == errno.EADDRNOTAVAIL:
        raise KmnistError(
          f"--host={host} is not an address of this machine; give e.g. 127.0.0.1 or 0.0.0.0"
        ) from None
      if e.errno == errno.EACCES:
        raise KmnistError(
          f"--{flag}={port}: ports below 1024 need root; pass a higher port"
        ) from None
      raise KmnistError(f"--{flag}={port} cannot be listened on ({e.strerror})") from None
