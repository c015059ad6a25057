"""kmnist-train: train the tutorial's softmax regression, evaluate it, export it for serving and for phones.

    kmnist-train                       # the tutorial: 1000 steps x 100 examples, SGD at 0.5, ~92 % test accuracy
    kmnist-train --flagfile=my.flags   # any flag below, one per line
"""
# Flags are defined here and only here; everything from `run` down takes plain values, so tests call `run`
# directly with their own data (`datasets_override`) and strategy (`strategy_override`).

import dataclasses
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from absl import app, flags, logging

from kmnist import command, data
from kmnist.config import STRATEGIES, TrainConfig
from kmnist.errors import KmnistError

_DEFAULTS = TrainConfig()


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  """All of kmnist-train's flags, with TrainConfig's defaults."""
  d = _DEFAULTS
  flags.DEFINE_integer("steps", d.steps, "Training steps (SGD updates) in total.", flag_values=fv)
  flags.DEFINE_integer("batch_size", d.batch_size, "Global batch size: split evenly over the replicas.",
                       flag_values=fv)
  flags.DEFINE_float("learning_rate", d.learning_rate, "SGD learning rate.", flag_values=fv)
  flags.DEFINE_integer("seed", d.seed, "Seed for the shuffle order (weights start at zero).", flag_values=fv)
  flags.DEFINE_integer("eval_every", d.eval_every,
                       "Steps between validation evaluations (one Keras epoch); must divide --steps.", flag_values=fv)
  flags.DEFINE_integer("steps_per_execution", d.steps_per_execution,
                       "Steps run per call into the compiled graph (speed only; results are identical); "
                       "lowered to a divisor of --eval_every.", flag_values=fv)
  flags.DEFINE_enum("strategy", d.strategy, STRATEGIES,
                    "tf.distribute strategy: auto = mirrored over this machine's GPUs (or --cpu_replicas CPUs) if "
                    "any, else default; multi_worker = MultiWorkerMirroredStrategy, cluster from TF_CONFIG.",
                    flag_values=fv)
  flags.DEFINE_integer("cpu_replicas", d.cpu_replicas,
                       "Split the CPU into this many logical devices before TensorFlow starts, so mirrored runs "
                       "that many replicas on one machine (to try distribution without GPUs).", flag_values=fv)
  command.define_data_flags(fv)
  flags.DEFINE_string("model_dir", d.model_dir,
                      "Run directory: checkpoints (a rerun with the same flags resumes), metrics.json, MANIFEST.json, "
                      "the pictures and the TensorBoard logs (<model_dir>/logs).",
                      flag_values=fv)
  flags.DEFINE_string("export_dir", d.export_dir,
                      "Export base: SavedModel in <export_dir>/saved_model/<version>/, TFLite in "
                      "<export_dir>/tflite/<version>/.", flag_values=fv)
  flags.DEFINE_boolean("restart", d.restart,
                       "Discard the checkpoints in --model_dir and train from step 0 (default: resume them).",
                       flag_values=fv)
  flags.DEFINE_integer("export_version", d.export_version,
                       "Version number of the export; default: one past the highest existing.", flag_values=fv)
  flags.DEFINE_boolean("visualize", d.visualize,
                       "Draw weights.png, confusion_matrix.png and mistakes.png into --model_dir after training; "
                       "--novisualize skips them.", flag_values=fv)
  flags.DEFINE_list("tflite", ",".join(d.tflite),
                    "TFLite variants to export, comma-separated: float, dynamic (dynamic-range quantized), int8 "
                    "(full integer).", flag_values=fv)


def config_from_flags(fv: flags.FlagValues = flags.FLAGS) -> TrainConfig:
  names = [f.name for f in dataclasses.fields(TrainConfig)]
  values = {name: fv[name].value for name in names}
  return TrainConfig(**{name: tuple(v) if isinstance(v, list) else v for name, v in values.items()})


@dataclasses.dataclass
class RunResult:
  model: object  # the trained keras.Model
  metrics: dict
  saved_model_dir: Path | None  # None on a non-chief worker: only the chief keeps outputs
  tflite_paths: dict
  tflite_report: dict
  pictures: dict = dataclasses.field(default_factory=dict)  # {file name: path}; empty under --novisualize
  pictures_seconds: float = 0.0


def run(config: TrainConfig, datasets_override: data.Datasets | None = None, strategy_override=None) -> RunResult:
  """Trains, evaluates and exports one model as `config` says. Raises KmnistError on bad input."""
  config.validate()
  check_paths(config)
  import keras  # Deferred: bad flags and paths are reported in milliseconds, not after TensorFlow's start-up.

  from kmnist import distribute, export, files, manifest, visualize

  if strategy_override is None:
    # Both before TensorFlow's first op: devices and a cluster's collectives are fixed when it starts.
    distribute.split_cpu(config.cpu_replicas)
    strategy = distribute.make_strategy(config.strategy)
  else:
    strategy = strategy_override
  keras.utils.set_random_seed(config.seed)
  distribute.check_global_batch(config.batch_size, strategy)
  datasets = datasets_override or data.load(config.data_dir, config.manual_dir)

  with distribute.lost_peers_reported(strategy):
    model = train_model(config, datasets, strategy)
    # One pass over the test set serves the metrics, the class report, the pictures and the export checks.
    test_logits = export.keras_logits(model, datasets.test.images)
    metrics = score_test_logits(test_logits, datasets.test.labels, config)
    metrics["replicas"] = strategy.num_replicas_in_sync
    metrics.update(visualize.class_report(datasets.test.labels, test_logits.argmax(-1)))
    if not distribute.is_chief(strategy):
      # Every worker takes part in the collective steps of the export (TF's multi-worker pattern: non-chief
      # workers save to a temporary directory and delete it); only the chief keeps outputs.
      with tempfile.TemporaryDirectory(prefix="kmnist-worker-") as scratch:
        export.export_and_verify(model, datasets, scratch, chief=False, reference_logits=test_logits)
      return RunResult(model=model, metrics=metrics, saved_model_dir=None, tflite_paths={}, tflite_report={})
    exports = export.export_and_verify(model, datasets, config.export_dir, config.export_version, config.tflite,
                                       reference_logits=test_logits)

  metrics["saved_model_dir"] = str(exports.saved_model_dir)
  metrics["tflite"] = {k: str(v) for k, v in exports.tflite_paths.items()}
  pictures, pictures_seconds = {}, 0.0
  if config.visualize:
    start = time.perf_counter()
    kernel, _ = model.get_layer("logits").get_weights()
    pictures = visualize.write_pictures(config.model_dir, kernel, datasets.test, test_logits)
    pictures_seconds = time.perf_counter() - start
  metrics_path = files.write_json_atomic(Path(config.model_dir) / "metrics.json", metrics)
  tflite_dirs = sorted({path.parent for path in exports.tflite_paths.values()})
  manifest.write_manifest(config.model_dir, metrics, dataclasses.asdict(config),
                          [metrics_path, exports.saved_model_dir, *tflite_dirs, *pictures.values()])
  return RunResult(model=model, metrics=metrics, saved_model_dir=exports.saved_model_dir,
                   tflite_paths=exports.tflite_paths, tflite_report=exports.tflite_report,
                   pictures=pictures, pictures_seconds=pictures_seconds)


def check_paths(config: TrainConfig) -> None:
  """Before TensorFlow starts: the directories the run writes are writable, a requested export version is free,
  and the MNIST files in a --manual_dir are the genuine ones (a bad file the user named is worth saying even when
  the data is already prepared)."""
  from kmnist import files

  if config.manual_dir:
    data.check_manual_dir(config.manual_dir)
  for flag, path in (("--model_dir", config.model_dir), ("--export_dir", config.export_dir),
                     ("--data_dir", config.data_dir)):
    files.check_writable_directory(path, flag)
  if config.export_version is not None:
    for kind in ("saved_model", "tflite"):
      taken = Path(config.export_dir) / kind / str(config.export_version)
      if taken.exists():
        raise KmnistError(f"--export_version={config.export_version}: {taken} already exists and is never "
                          f"overwritten; pick another version or leave --export_version unset for the next free one")


def runnable_steps_per_execution(config: TrainConfig, replicas: int) -> int:
  """--steps_per_execution as Keras can run it; the flag trades speed only, so this never changes results.

  Keras runs whole executions, so a value that does not divide --eval_every would train extra steps every epoch
  (100 per call with --eval_every=20 trains 100 steps per epoch): use the largest divisor of both. On several
  replicas Keras 3 fails with more than one step per execution ("You must feed a value for placeholder tensor",
  keras-team/keras#19246): use 1.
  """
  if replicas > 1:
    return 1
  return math.gcd(config.steps_per_execution, config.eval_every)


def train_model(config: TrainConfig, datasets: data.Datasets, strategy):
  """Fits the model, resuming from `<model_dir>/checkpoints` when an earlier run with the same flags was cut short."""
  import keras

  from kmnist import checkpoints, distribute
  from kmnist import model as model_lib

  steps_per_execution = runnable_steps_per_execution(config, strategy.num_replicas_in_sync)
  if steps_per_execution != config.steps_per_execution:
    logging.warning("--steps_per_execution=%d runs as %d here (see train.runnable_steps_per_execution); it only "
                    "changes speed", config.steps_per_execution, steps_per_execution)
  in_cluster = distribute.cluster_task(strategy) is not None
  if in_cluster:
    # Workers would all have to resume from the same step, each from checkpoints of its own: a cluster run starts
    # at step 0 and every worker saves (a collective step) into a scratch directory removed at the end.
    scratch = tempfile.TemporaryDirectory(prefix="kmnist-checkpoints-")
    checkpoint_dir = Path(scratch.name)
  else:
    checkpoint_dir = Path(config.model_dir) / "checkpoints"
  if config.restart:
    checkpoints.discard(checkpoint_dir)
  with strategy.scope():
    model = model_lib.compile_model(model_lib.build_model(), config.learning_rate, steps_per_execution)
    checkpointer = checkpoints.Checkpointer(checkpoint_dir, model, run_values=resume_key(config))
  start_step = checkpointer.restore()
  if start_step == config.steps:
    print(f"Already trained to step {start_step} ({checkpoint_dir}); evaluating and exporting it again "
          f"(--restart to retrain).")
  elif start_step:
    print(f"Resuming at step {start_step} of {config.steps} from {checkpoint_dir} (--restart to start over).")
  callbacks = [checkpoints.StopOnNonFinite(config.learning_rate),  # first: nothing non-finite is checkpointed
               checkpointer.callback()]
  if distribute.is_chief(strategy):
    # Loss and accuracy per --eval_every steps in logs/train, validation in logs/validation.
    callbacks.append(keras.callbacks.TensorBoard(log_dir=os.path.join(config.model_dir, "logs")))
  model.fit(
      # The stream is a function of the seed alone: skipping what was seen resumes it exactly.
      training_batches(config, datasets.train, strategy, start_step),
      initial_epoch=start_step // config.eval_every,
      epochs=config.steps // config.eval_every,
      steps_per_epoch=config.eval_every,
      validation_data=data.eval_dataset(datasets.validation, config.batch_size),
      callbacks=callbacks,
      shuffle=False,  # The tf.data pipeline shuffles, reproducibly under the seed.
      verbose=2 if not sys.stdout.isatty() else 1,
  )
  if in_cluster:
    scratch.cleanup()
  return model


def training_batches(config: TrainConfig, train: data.Split, strategy, start_step: int = 0):
  """What `fit` trains on: each replica's rows of the seeded global batches, from `start_step` on."""
  from kmnist import distribute

  return distribute.replica_batches(
      strategy,
      lambda: data.batch_indices(len(train), config.batch_size, config.seed, start_step),
      lambda indices: data.train_dataset(train, config.batch_size, config.seed, indices=indices),
      config.batch_size)


def resume_key(config: TrainConfig) -> dict:
  """The flags that decide the weights: a checkpoint is resumed only under the same values."""
  return {name: getattr(config, name) for name in ("steps", "batch_size", "learning_rate", "seed", "eval_every")}


def evaluate_model(model, test: data.Split, config: TrainConfig) -> dict:
  from kmnist import export

  return score_test_logits(export.keras_logits(model, test.images), test.labels, config)


def score_test_logits(logits, labels, config: TrainConfig) -> dict:
  """Test accuracy and mean cross-entropy from the model's logits (float64, so summing 10,000 terms stays exact)."""
  import numpy as np

  logits = np.asarray(logits, np.float64)
  peak = logits.max(-1)
  log_sum_exp = peak + np.log(np.exp(logits - peak[:, None]).sum(-1))
  return {
      "test_accuracy": float(np.mean(logits.argmax(-1) == labels)),
      "test_loss": float(np.mean(log_sum_exp - logits[np.arange(len(labels)), labels])),
      "test_examples": len(labels),
      "config": dataclasses.asdict(config),
  }


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}; kmnist-train takes only --flags")
  start = time.time()
  result = run(config_from_flags())
  m = result.metrics
  print(f"test accuracy: {m['test_accuracy']:.4f}  test loss: {m['test_loss']:.4f}  "
        f"({time.time() - start:.1f} s)")
  if result.saved_model_dir is None:
    print("non-chief worker: done; the chief wrote metrics.json and the exports")
    return
  print(f"SavedModel: {result.saved_model_dir}")
  from kmnist import tflite_report
  print(tflite_report.markdown(result.tflite_report), end="")
  if result.pictures:
    print(f"Pictures: {', '.join(str(p) for p in result.pictures.values())}  ({result.pictures_seconds:.1f} s)")


def cli():
  """Console-script entry point (`kmnist-train`)."""
  command.run_command("kmnist-train", define_flags, main)


if __name__ == "__main__":
  cli()
