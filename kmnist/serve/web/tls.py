"""HTTPS and gRPC over TLS for kmnist-serve: the two flags, and the check of the files they name.

A service worker, which keeps the drawing page working offline, runs only in a secure context: a
page from localhost, or over https. A phone on the same network opens the page at the machine's
address, so kmnist-serve serves https when given a certificate and its key (README shows how to
make a local one). Both servers take them: uvicorn (REST, the page) and gRPC.

No TensorFlow here: the command checks the files before TensorFlow loads.
"""

import os
import ssl

from absl import flags

from kmnist.util.errors import KmnistError


def define_flags(fv: flags.FlagValues) -> None:
  flags.DEFINE_string(
    "ssl_certfile",
    None,
    "PEM certificate (chain) to serve HTTPS and gRPC over TLS with; needs --ssl_keyfile.",
    flag_values=fv,
  )
  flags.DEFINE_string(
    "ssl_keyfile", None, "PEM private key of --ssl_certfile (unencrypted).", flag_values=fv
  )


def check(certfile: str | None, keyfile: str | None) -> tuple[str, str] | None:
  """(certfile, keyfile) if both are given and make a certificate with its key; None if neither;
  KmnistError naming the flag and the fix otherwise."""
  if not certfile and not keyfile:
    return None
  if not certfile or not keyfile:
    given, missing = (
      ("ssl_certfile", "ssl_keyfile") if certfile else ("ssl_keyfile", "ssl_certfile")
    )
    raise KmnistError(
      f"--{given} needs --{missing}: give the certificate and its private key together (README, "
      "'Serving over https'), or neither to serve plain http"
    )
  for flag, path in (("ssl_certfile", certfile), ("ssl_keyfile", keyfile)):
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
      problem = "cannot be read by this user" if os.path.isfile(path) else "is not a file"
      raise KmnistError(f"--{flag}={path} {problem}; give a PEM file this user can read")
  context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
  try:
    context.load_cert_chain(certfile, keyfile, password=lambda: b"")
  except ssl.SSLError as e:
    raise KmnistError(
      f"--ssl_certfile={certfile} and --ssl_keyfile={keyfile} are not a PEM certificate and its "
      f"unencrypted private key ({e.reason or e.strerror}); make them as README shows "
      "('Serving over https')"
    ) from None
  return certfile, keyfile
