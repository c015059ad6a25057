"""kmnist's commands: `kmnist-train` (train.py), `kmnist-predict` (predict.py), `kmnist-visualize`
(visualize.py).

Each command module defines its flags, checks them and the paths they name, calls the library, and
prints. The commands are the one place where imports are deferred: TensorFlow takes ~3 s to import,
so a command module imports only light modules (absl, kmnist.config, kmnist.files, kmnist.errors) at
the top and the library (which imports TensorFlow at its top) inside `main`, after the checks. A
typo in a flag is reported in well under a second; tests/test_layout.py holds the commands to that.
"""
