"""TF Serving's REST routes that kserve's V1 endpoints lack, by version and by label.

    GET  /v1/models/<name>[/versions/<v> | /labels/<label>]            model status
    GET  /v1/models/<name>[/versions/<v> | /labels/<label>]/metadata   the SignatureDefs
    POST /v1/models/<name>/versions/<v>:predict, /labels/<label>:predict

(TF Serving's http_rest_api_util.cc matches the same paths.) :predict by version or label goes
through kserve's own V1 handler, the same pipeline and metrics as /v1/models/<name>:predict; the
version or label travels to preprocess in a header, and preprocess takes that servable.
"""

from fastapi import Request
from fastapi.routing import APIRouter
from kserve.protocol.rest.v1_endpoints import V1Endpoints

from kmnist.serve import model as serve_model
from kmnist.serve.protocols import tf_serving_grpc, tf_serving_rest

PINNED = (serve_model.PINNED_VERSION_HEADER.encode(), serve_model.PINNED_LABEL_HEADER.encode())


def router(dataplane, repository_extension) -> APIRouter:
  routes = APIRouter()

  def versions(model_name: str):
    return dataplane.get_model_from_registry(model_name).versions  # ModelNotFound -> 404

  def status(model_name: str, version: int | None = None, label: str | None = None):
    return tf_serving_rest.model_status(versions(model_name).status(version, label))

  def metadata(model_name: str, version: int | None = None, label: str | None = None):
    servable = versions(model_name).servable(version, label)
    signature_defs = tf_serving_grpc.signature_def_map(servable)
    return tf_serving_rest.model_metadata(model_name, servable, signature_defs)

  @routes.get("/v1/models/{model_name}")
  async def model_status(model_name: str):
    return status(model_name)

  @routes.get("/v1/models/{model_name}/versions/{version}")
  async def version_status(model_name: str, version: int):
    return status(model_name, version)

  @routes.get("/v1/models/{model_name}/labels/{label}")
  async def label_status(model_name: str, label: str):
    return status(model_name, label=label)

  @routes.get("/v1/models/{model_name}/metadata")
  async def model_metadata(model_name: str):
    return metadata(model_name)

  @routes.get("/v1/models/{model_name}/versions/{version}/metadata")
  async def version_metadata(model_name: str, version: int):
    return metadata(model_name, version)

  @routes.get("/v1/models/{model_name}/labels/{label}/metadata")
  async def label_metadata(model_name: str, label: str):
    return metadata(model_name, label=label)

  v1 = V1Endpoints(dataplane, repository_extension)

  async def pinned_predict(model_name: str, request: Request, header: bytes, value: str):
    """kserve's V1 :predict with the version or label in a header (a client's own is dropped)."""
    headers = [(k, v) for k, v in request.scope["headers"] if k.lower() not in PINNED]
    scope = dict(request.scope, headers=[*headers, (header, value.encode())])
    return await v1.predict(model_name, Request(scope, request.receive))

  @routes.post("/v1/models/{model_name}/versions/{version:int}:predict")
  async def version_predict(model_name: str, version: int, request: Request):
    return await pinned_predict(model_name, request, PINNED[0], str(version))

  @routes.post("/v1/models/{model_name}/labels/{label}:predict")
  async def label_predict(model_name: str, label: str, request: Request):
    return await pinned_predict(model_name, request, PINNED[1], label)

  return routes
