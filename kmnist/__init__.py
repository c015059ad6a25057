"""kmnist: TensorFlow's "MNIST For ML Beginners" and its next steps, packaged: train, export, serve.

The tree reads as the pipeline; each stage is a package whose `__init__` is its map, and each
imports only the stages before it (tests/test_layout.py holds that):

    util/       helpers every stage uses: errors, disk faults, atomic files, the quiet console
    data/       the shipped MNIST files -> TFDS -> the tutorial's splits -> tf.data batches
    models/     the models by name (the registry), their layers, how their logits are scored
    export/     the SavedModel for TF Serving and the TFLite files, each checked against Keras
    visualize/  the pictures of what a model learned
    training/   TrainConfig, strategies, checkpoints, `run`: the whole of kmnist-train
    predict/    users' pictures and arrays classified with an export (kmnist-predict)
    serve/      kmnist-serve: TF Serving's and Open Inference's APIs, the drawing page
    cli/        the four commands: flags, checks, printing; the one place imports are deferred
    reference/  the default command's export, shipped as package data
    third_party/  code kmnist did not write, vendored unchanged with its licence and origin
"""

__version__ = "0.1.0"
