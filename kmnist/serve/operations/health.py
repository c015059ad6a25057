"""Liveness, readiness, the drain on SIGTERM, and the bound on requests in flight.

Live: the process answers (its event loop runs). Ready: every configured model serves a version and
the server is not draining. kmnist-serve listens only once every configured model is loaded and
warmed up (as TF Serving), so readiness is true from its first answer until SIGTERM. Then it is
false, a new request is refused with 503 and Retry-After (and Connection: close), the requests
already accepted finish (at most --drain_seconds), and the server exits 0.

At most `max_in_flight` requests are worked on at once (--max_requests_in_flight): one more is
refused at once with 429 and Retry-After, so a flood cannot queue without bound, and the probes,
which never count, keep answering.
"""

import asyncio
import contextlib
import time

RETRY_AFTER_SECONDS = 1


class RefusedError(Exception):
  """A request not taken: draining (503, UNAVAILABLE) or too many in flight (429,
  RESOURCE_EXHAUSTED); the client may retry after RETRY_AFTER_SECONDS, elsewhere if draining."""

  def __init__(self, message: str, http_status: int, grpc_code: str):
    super().__init__(message)
    self.http_status, self.grpc_code = http_status, grpc_code


class Health:
  def __init__(self, registry=None, max_in_flight: int = 128):
    self.registry = registry  # kserve's ModelRepository: readiness asks each model
    self.max_in_flight = max_in_flight
    self.in_flight = 0
    self.draining = False
    self._idle = asyncio.Event()

  def ready(self) -> tuple[bool, str]:
    """(ready, why not)."""
    if self.draining:
      return False, "draining: this server is stopping (SIGTERM)"
    models = self.registry.get_models() if self.registry is not None else {}
    waiting = [name for name, model in models.items() if not getattr(model, "ready", False)]
    if not models or waiting:
      return False, f"models not serving a version yet: {', '.join(waiting) or 'none configured'}"
    return True, ""

  @contextlib.contextmanager
  def admitted(self):
    """A request's work, counted; RefusedError when draining or when `max_in_flight` are at work."""
    if self.draining:
      raise RefusedError(
        "this server is draining (it got SIGTERM) and takes no new request; retry another",
        503,
        "UNAVAILABLE",
      )
    if self.in_flight >= self.max_in_flight:
      raise RefusedError(
        f"{self.in_flight} requests are in flight, this server's limit (kmnist-serve "
        "--max_requests_in_flight); retry after a second",
        429,
        "RESOURCE_EXHAUSTED",
      )
    self.in_flight += 1
    self._idle.clear()
    try:
      yield
    finally:
      self.in_flight -= 1
      if not self.in_flight:
        self._idle.set()

  async def drain(self, seconds: float) -> int:
    """Readiness false and new requests refused from now; returns once the requests in flight have
    finished, or after `seconds`: how many were still in flight then."""
    self.draining = True
    deadline = time.monotonic() + seconds
    while self.in_flight and time.monotonic() < deadline:
      with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(self._idle.wait(), deadline - time.monotonic())
    return self.in_flight
