"""The drawing page's "on this device" mode, server side: its service worker, and the TFLite files
of the version being served, which the page runs in the browser (static/device.js).

The files are those kmnist-train wrote with the served SavedModel: its record names their
directory (<export>/tflite/<v>, beside <export>/saved_model/<v>) and both records carry one export
id, so the page runs the version, and the model, the server answers with: each model of a family
its own. A version exported without them (an older kmnist, or --tflite without the bundles) gets
404 naming the file, and the page's mode says so.
"""

import mimetypes

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.exceptions import HTTPException

from kmnist.export import formats, record
from kmnist.serve.web import page
from kmnist.util.errors import KmnistError

SERVICE_WORKER = page.STATIC_DIR / "sw.js"
TFLITE_FILES = {formats.tflite_filename(variant) for variant in formats.TFLITE_VARIANTS}
# Browsers compile WebAssembly as it streams in only when it is served as such; Python's table of
# types may lack it (it depends on the system's mime.types).
mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("text/javascript", ".js")


def router(dataplane) -> APIRouter:
  """GET /sw.js and GET /v1/models/<name>/tflite/<file>, for the app (kmnist.serve.web.app)."""
  routes = APIRouter()

  @routes.get("/sw.js", include_in_schema=False)
  async def service_worker():
    # Served from the root, so that it may control the whole page (a worker's scope is at most
    # its own folder); never cached by HTTP, so a new kmnist's worker is seen at once.
    return FileResponse(
      SERVICE_WORKER, media_type="text/javascript", headers={"Cache-Control": "no-cache"}
    )

  @routes.get("/v1/models/{model_name}/tflite/{filename}")
  async def tflite_file(model_name: str, filename: str):
    servable = dataplane.get_model_from_registry(model_name).versions.current
    return served_file(servable, model_name, filename)

  return routes


def served_file(servable, model_name: str, filename: str) -> FileResponse:
  """`filename` of the TFLite directory beside the served version, or 404 saying why not."""
  if filename not in TFLITE_FILES:
    served = ", ".join(sorted(TFLITE_FILES))
    raise HTTPException(404, f"{filename} is not a kmnist TFLite file; this route serves {served}")
  directory = servable.tflite_dir
  path = directory / filename
  foreign = record.not_of_export(_record(directory), servable.about)
  if path.is_file() and foreign:  # another model's or another export's files: never served
    raise HTTPException(
      404,
      f"version {servable.version} of {model_name}: {directory} is not its export's TFLite "
      f"directory ({foreign}); mount the whole export directory (saved_model/ and tflite/)",
    )
  if not path.is_file():
    raise HTTPException(
      404,
      f"version {servable.version} of {model_name} has no {filename} ({path} is missing); export "
      "the model again with kmnist-train, whose --tflite writes it by default",
    )
  headers = {"Cache-Control": "no-cache", "X-Model-Version": str(servable.version)}
  return FileResponse(path, media_type="application/octet-stream", headers=headers)


def _record(directory):
  try:
    return record.read(directory)
  except KmnistError:
    return {"model": None}
