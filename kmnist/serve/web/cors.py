"""CORS (--cors_allowed_origins): pages from other origins may call kmnist-serve's REST API.

Starlette's CORSMiddleware answers as the Fetch standard's CORS protocol asks: a preflight
(OPTIONS with Origin and Access-Control-Request-Method) from an allowed origin gets 200 with
Access-Control-Allow-Origin, -Methods (GET, POST), -Headers (Content-Type and the Open Inference
binary header) and -Max-Age; an actual request from an allowed origin gets
Access-Control-Allow-Origin (the origin itself, with Vary: Origin, or * when any origin is
allowed); no credentials are allowed (the server has no cookies or logins). Other origins get no
CORS header, so browsers keep their pages from reading the answers. (TF Serving's http_server.cc,
with --enable_cors_support, allows every origin, *; here the origins are listed.) A refused
preflight is one line, {"error": ...}, like every refusal of this server.
"""

import logging

from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse

logger = logging.getLogger("kmnist.serve")

METHODS = ("GET", "POST")
HEADERS = ("Content-Type", "Inference-Header-Content-Length")


class Cors(CORSMiddleware):
  def __init__(self, app, allow_origins):
    super().__init__(
      app, allow_origins=allow_origins, allow_methods=METHODS, allow_headers=HEADERS, max_age=600
    )

  def preflight_response(self, request_headers):
    response = super().preflight_response(request_headers)
    if response.status_code == 200:
      return response
    origin = request_headers["origin"]
    method = request_headers["access-control-request-method"]
    asked = request_headers.get("access-control-request-headers", "")
    if not self.is_allowed_origin(origin):
      why = f"origin {origin} is not one of --cors_allowed_origins"
    elif method not in self.allow_methods:
      why = f"method {method} is not one of {', '.join(METHODS)}"
    elif "access-control-request-private-network" in request_headers:
      why = "it asks for private network access, which is not given"
    else:
      why = f"headers '{asked}' are not all of {', '.join(HEADERS)}"
    message = f"CORS preflight refused: {why}"
    logger.warning("403 OPTIONS: %s", message)
    return JSONResponse(status_code=403, content={"error": message})
