"""What clients speak to kmnist-serve, each mapped onto the same served signatures.

tf_serving_rest    TF Serving's REST formats: predict (row and columnar), status, metadata
tf_serving_routes  TF Serving's REST routes kserve lacks: status, metadata, by version and label
tf_serving_grpc    TF Serving's gRPC PredictionService and ModelService; warmup replay
open_inference     the Open Inference Protocol (KServe V2, REST and gRPC): one input tensor
"""
