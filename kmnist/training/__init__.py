"""The training stage: a TrainConfig in, a trained, scored and exported model out.

    config.py        TrainConfig: every setting once (its flag is made from it) and its checks
    optimization.py  the loss, metric, optimizer and learning-rate schedule a config asks for
    strategies.py    the strategies by name, their flags and TF_CONFIG checked (no TensorFlow)
    distribute.py    the tf.distribute strategy, who is chief, a lost peer in one line
    batches.py       each replica's rows of the seeded global batches
    checkpoints.py   checkpoints for exact resume, and the divergence guard
    interrupt.py     Ctrl-C taken at the end of a step, not inside TensorFlow
    train.py         `train_model` and `run`: the whole pipeline as a library
    ray_train.py     `run` on Ray workers: Ray Train starts them and writes their TF_CONFIG

Nothing is imported here: `config` has no TensorFlow, so the command checks flags before it loads.
"""
