"""The model stage: the networks kmnist trains, and how their logits are scored.

    registry.py  the models by name: builder, default schedule, picture kind (no TensorFlow)
    softmax.py   the tutorial's softmax regression
    mlp.py       two hidden ReLU layers: the tutorial's "small changes"
    cnn.py       the small convolutional network (synchronized batch norm)
    metrics.py   logits -> accuracy, loss, confusion matrix, per-digit report (NumPy)

A new model is one module with a `build()` and one `registry.register` call.
"""
