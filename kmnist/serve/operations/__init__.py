"""The operator's side of kmnist-serve (see kmnist.serve)."""
