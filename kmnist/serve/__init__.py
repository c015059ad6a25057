"""kmnist-serve: SavedModels behind KServe's Python model server, speaking TF Serving's APIs.

Modules, one idea each:
  version_policy       which versions to serve: what --model names, TF Serving's latest/all/specific
  versions             one model's versions: poll the base path, load, swap, release; its labels
  model_config         TF Serving's model config file (--model_config_file), read and checked
  served_models        the models served, kept in step with the config file while serving
  servable             one loaded version: its signatures, what they accept, running them
  batching_parameters  TF Serving's BatchingParameters file, read and checked
  batching             concurrent requests to one version run as one batch (--enable_batching)
  tf_serving_rest      TF Serving's REST formats: predict (row and columnar), status, metadata
  tf_serving_grpc      TF Serving's gRPC PredictionService and ModelService; warmup replay
  model                the kserve.Model behind V1 (TF Serving REST), V2 (Open Inference) and gRPC
  tf_serving_routes    TF Serving's REST routes kserve lacks: status, metadata, by version and label
  page                 the drawing page: a drawing prepared as kmnist-predict prepares a picture
  device               the page's "on this device" mode: its service worker, the served version's
                       TFLite files (the int8 bundle the page runs with LiteRT.js, static/vendor/)
  cors                 CORS for --cors_allowed_origins, as the Fetch standard asks
  app                  the REST app: kmnist's routes before kserve's, limits, one-line errors
  server               kserve's ModelServer bound to --host, with TF Serving's gRPC services
  tls                  --ssl_certfile / --ssl_keyfile: https and gRPC over TLS, checked first
"""
