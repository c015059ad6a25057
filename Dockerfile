# Two images of kmnist from one file.
#
# kmnist-serve (the default target): the kmnist SavedModel behind KServe's model server, answering
# TensorFlow Serving's REST (8501) and gRPC (8500) APIs, the Open Inference Protocol and the
# drawing page. Run it as TF Serving's image is run (docs/guides/docker-kubernetes.md):
#   docker build -t kmnist-serve .
#   docker run --rm -p 8501:8501 -p 8500:8500 \
#     --mount type=bind,source="$PWD/exported",target=/models/kmnist kmnist-serve
# (the whole export directory: saved_model/ and the tflite/ files each version's record names, which
# the page's on-device mode fetches). Without the mount it serves the reference export shipped in
# the package. The model family (the softmax regression, the MLP and the CNN) from one TF Serving
# model config file, batched, each model with its own phone files:
#   docker run --rm -p 8501:8501 -p 8500:8500 \
#     --mount type=bind,source="$PWD/runs/mlp",target=/models/mlp \
#     --mount type=bind,source="$PWD/runs/cnn",target=/models/cnn \
#     kmnist-serve --host=0.0.0.0 --model_config_file=/models/models.config \
#     --enable_batching --batching_parameters_file=/models/batching.config
#
# kmnist-train (the `train` target): kmnist-train with Ray, the image of the training jobs in
# deploy/training/ (a TFJob, an Indexed Job, a KubeRay RayJob):
#   docker build --target train -t kmnist-train .
#   docker run --rm kmnist-train --steps=100 --tflite=float
FROM python:3.11-slim AS base

WORKDIR /opt/kmnist
COPY pyproject.toml README.md ./
COPY kmnist ./kmnist

FROM base AS train
# KubeRay probes a Ray node with wget; the Ray of kmnist's ray extra, with its dashboard (Ray Jobs,
# which a RayJob submits through), at the version deploy/training/rayjob.yaml names.
RUN apt-get update && apt-get install -y --no-install-recommends wget \
  && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir ".[ray]" "ray[default]==2.60.0"
# A home, the runs' working directory: TFDS prepares MNIST in ~/tensorflow_datasets, Ray keeps its
# records in ~/ray_results, a run without --model_dir writes runs/ there.
RUN useradd --uid 1000 --create-home kmnist
USER kmnist
WORKDIR /home/kmnist
ENTRYPOINT ["kmnist-train"]

FROM base AS serve
RUN pip install --no-cache-dir ".[serve]"

# The reference export, served unless an export directory is mounted over /models/kmnist.
COPY kmnist/reference/saved_model /models/kmnist/saved_model
COPY kmnist/reference/tflite /models/kmnist/tflite
# The model family's config file (deploy/models.config) and the batching parameters.
COPY deploy/models.config deploy/batching.config /models/

RUN useradd --system --uid 1000 --no-create-home kmnist
USER kmnist
EXPOSE 8501 8500
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s CMD ["python", "-c", \
  "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/v2/health/ready')"]
ENTRYPOINT ["kmnist-serve"]
# Listening on every interface is what a container needs; outside one the default is 127.0.0.1.
CMD ["--host=0.0.0.0", "--model=/models/kmnist/saved_model", "--http_port=8501", "--grpc_port=8500"]
