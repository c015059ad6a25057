"""The served models: which versions of which models, loaded, swapped and run.

version_policy       which versions to serve: what --model names, TF Serving's latest/all/specific
model_config         TF Serving's model config file (--model_config_file), read and checked
versions             one model's versions: poll the base path, load, swap, release; its labels
model_set            the models served, kept in step with the config file while serving
servable             one loaded version: its signatures, what they accept, running them
batching_parameters  TF Serving's BatchingParameters file, read and checked
batching             concurrent requests to one version run as one batch (--enable_batching)
"""
