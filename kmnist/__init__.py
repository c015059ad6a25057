"""kmnist: TensorFlow's "MNIST For ML Beginners" softmax regression, packaged.

The tree reads as the pipeline (BUILD_NOTES.md has a line per module):

    mnist_files/ -> data -> input_pipeline -> models/ -> train (distribute, checkpoints, metrics)
        -> export/ (saved_model, tflite, report) -> predict, visualize/
    cli/  the commands: flags, validation and printing; the only place that defers heavy imports
"""

__version__ = "0.1.0"
