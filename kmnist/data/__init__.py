"""The data stage: MNIST from the files shipped in the package to the batches training reads.

    spec.py            what an example is (28x28 uint8, 10 classes), the default data directory
    mnist_files/       the four original MNIST files, their checksums, the --manual_dir check
    mnist.py           the tutorial's three splits as arrays, from their cache or through TFDS
    tfds_source.py     TFDS's `mnist` prepared from the files and decoded (first run only)
    input_pipeline.py  tf.data: the seeded training order, augmentation, evaluation batches

Nothing is imported here, so `kmnist.data.spec` stays free of TensorFlow and TFDS.
"""
