"""Prediction on users' files: what a --model path names, their pictures and arrays as digits.

    model_paths.py  a --model path: SavedModel version, TF Serving base or .tflite; the reference
    images.py       a picture -> an MNIST-style 28x28 digit; the blank-and-noise check
    arrays.py       a .npy of digits, its header checked before any pixel is read
    classify.py     classify files with a SavedModel or a .tflite, in bounded memory

Nothing is imported here: `model_paths` has no TensorFlow, so the commands check paths first.
"""
