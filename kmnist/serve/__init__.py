"""kmnist-serve: SavedModels behind KServe's Python model server, speaking TF Serving's APIs.

Grouped as a request meets it:
  protocols/   what clients speak: TF Serving's REST and gRPC, the Open Inference Protocol
  repository/  the served models: which versions (policy, config file), loading and swapping them,
               one loaded version (servable), request batching
  operations/  the operator's side: probes and drain, the bound on requests in flight, metrics,
               request logs, traces, the API key
  web/         the HTTP side: the REST app, CORS, TLS, the address, the drawing page and its
               on-device mode, its static files
  model        the kserve.Model behind every protocol: a request checked, run, answered
  server       kserve's ModelServer assembled: REST and gRPC on one host, drained on SIGTERM
"""
