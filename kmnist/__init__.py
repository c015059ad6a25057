"""kmnist: TensorFlow's "MNIST For ML Beginners" softmax regression, packaged.

The pipeline reads top to bottom: data -> model -> distribute -> train -> export -> tflite -> predict.
"""

__version__ = "0.1.0"
