"""kmnist-serve: the SavedModel behind KServe's Python model server, speaking TF Serving's APIs.

Modules, one idea each:
  servable         one loaded version: its signatures, what they accept, running them
  versions         TF Serving's version policy: poll the base path, load the newest, swap, release
  tf_serving_rest  TF Serving's REST formats: predict (row and columnar), status, metadata
  tf_serving_grpc  TF Serving's gRPC PredictionService and ModelService; warmup replay
  model            the kserve.Model behind V1 (TF Serving REST), V2 (Open Inference) and gRPC
  page             the drawing page: a drawing prepared as kmnist-predict prepares a picture
  device           the page's "on this device" mode: its service worker, the served version's
                   TFLite files (the int8 bundle the page runs with LiteRT.js, static/vendor/)
  app              the REST app: kmnist's routes before kserve's, request limits, one-line errors
  server           kserve's ModelServer bound to --host, with the page, limits and status routes
  tls              --ssl_certfile / --ssl_keyfile: https and gRPC over TLS, checked first
"""
