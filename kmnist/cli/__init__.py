"""kmnist's four commands: `kmnist-train` (train.py), `kmnist-predict` (predict.py),
`kmnist-visualize` (visualize.py), `kmnist-serve` (serve.py, with serve_config.py for its model
config file, batching and CORS flags); common.py holds what they share.

Each command module defines its flags, checks them and the paths they name, calls the library, and
prints. The commands are the one place where imports are deferred: TensorFlow takes ~3 s to import,
so a command module imports only light modules at the top (absl, kmnist.training.config,
kmnist.util, kmnist.predict.model_paths, kmnist.serve.repository) and the library, which imports
TensorFlow at its top, inside `main`, after the checks. A typo in a flag is reported in well under a
second; tests/test_layout.py holds the commands to that.
"""
