"""Training as a library: `train_model` fits a model under a strategy; `run` is all of kmnist-train.

    result = run(TrainConfig(steps=500), datasets_override=..., strategy_override=...)

`run` validates the config, trains (resuming from checkpoints), scores the test set, exports
(kmnist.export), draws the pictures (kmnist.visualize), and writes metrics.json and MANIFEST.json.
It takes plain values and prints nothing itself: messages go to `log`, which the command line sets
to `print`.
"""

import dataclasses
import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import keras
from absl import logging

from kmnist.data import input_pipeline, mnist, splits
from kmnist.export import exporter, record
from kmnist.models import metrics, registry
from kmnist.training import batches, checkpoints, distribute, interrupt, optimization
from kmnist.training.config import TrainConfig
from kmnist.util import disk, files, manifest
from kmnist.util.stopwatch import Stopwatch
from kmnist.visualize import pictures


@dataclasses.dataclass
class RunResult:
  model: keras.Model
  metrics: dict
  saved_model_dir: Path | None  # None on a non-chief worker: only the chief keeps outputs
  tflite_paths: dict
  tflite_report: dict
  # {file name: path}; empty under --novisualize
  pictures: dict = dataclasses.field(default_factory=dict)


def run(
  config: TrainConfig,
  datasets_override: splits.Datasets | None = None,
  strategy_override=None,
  log: Callable[[str], None] = logging.info,
  callbacks: tuple = (),
  progress=None,
  clock: Stopwatch | None = None,
) -> RunResult:
  """Trains, evaluates and exports one model as `config` says. Raises KmnistError on bad input.

  `callbacks` are added to training's own (the benchmarks' clocks); `progress` shows the first
  run's data preparation (mnist.load); `clock` gets each stage's seconds, for metrics.json.
  """
  clock = clock or Stopwatch()
  config.validate().check_paths()
  if strategy_override is None:
    # Both before TensorFlow's first op: devices and a cluster's collectives are fixed then.
    distribute.split_cpu(config.cpu_replicas)
    strategy = distribute.make_strategy(config.strategy)
  else:
    strategy = strategy_override
  keras.utils.set_random_seed(config.seed)
  distribute.check_global_batch(config.batch_size, strategy)  # before the data: it is quick
  with clock("data"):
    datasets = datasets_override or mnist.load(
      config.data_dir, config.manual_dir, log=log, progress=progress
    )
  with distribute.lost_peers_reported(strategy):
    # A cluster's workers must all train the same model on the same data: checked first.
    distribute.check_workers_agree(
      strategy,
      {
        **config.resume_values(),
        "kmnist": manifest.kmnist_identity(),
        "data": datasets.fingerprint[:16],
      },
    )
    with clock("training"):
      model = train_model(config, datasets, strategy, log, callbacks)
    with clock("evaluation"):
      # One pass over the test set serves the metrics, the pictures and the export checks.
      test_logits = registry.predict_logits(model, datasets.test.images)
      run_metrics = {
        **metrics.scores(test_logits, datasets.test.labels),
        "config": dataclasses.asdict(config),
        "replicas": strategy.num_replicas_in_sync,
        **metrics.class_report(datasets.test.labels, test_logits.argmax(-1)),
      }
    if not distribute.is_chief(strategy):
      # Every worker takes part in the collective steps of the export (TF's multi-worker pattern:
      # non-chief workers save to a temporary directory and delete it); the chief keeps outputs.
      with tempfile.TemporaryDirectory(prefix="kmnist-worker-") as scratch:
        exporter.export_and_verify(
          model,
          datasets,
          scratch,
          tflite_variants=config.tflite,
          chief=False,
          reference_logits=test_logits,
        )
      return RunResult(
        model=model, metrics=run_metrics, saved_model_dir=None, tflite_paths={}, tflite_report={}
      )
    exports = exporter.export_and_verify(
      model,
      datasets,
      config.export_dir,
      config.export_version,
      config.tflite,
      reference_logits=test_logits,
      about=record.make(registry.get(config.model), dataclasses.asdict(config)),
      mediapipe_check=config.mediapipe_check,
      clock=clock,
    )
  try:
    return write_run_outputs(config, model, datasets, test_logits, run_metrics, exports, clock)
  except disk.DiskError:
    # A run that cannot finish leaves no export behind: the rerun writes the same versions.
    for path in (exports.saved_model_dir, *{p.parent for p in exports.tflite_paths.values()}):
      exporter.remove_version(path)
    raise


def write_run_outputs(
  config: TrainConfig,
  model,
  datasets,
  test_logits,
  run_metrics: dict,
  exports: exporter.Exports,
  clock: Stopwatch,
) -> RunResult:
  """The chief's outputs beside the exports: the pictures, metrics.json and MANIFEST.json."""
  run_metrics["saved_model_dir"] = str(exports.saved_model_dir)
  run_metrics["tflite"] = {k: str(v) for k, v in exports.tflite_paths.items()}
  drawn = {}
  if config.visualize:
    with clock("pictures"):
      kernel = pictures.pixel_kernel(model, config.model)
      picture = registry.get(config.model).picture
      drawn = pictures.write_pictures(config.model_dir, picture, kernel, datasets.test, test_logits)
  run_metrics["seconds"] = {stage: round(s, 3) for stage, s in clock.seconds.items()}
  metrics_path = files.write_json_atomic(Path(config.model_dir) / "metrics.json", run_metrics)
  tflite_dirs = sorted({path.parent for path in exports.tflite_paths.values()})
  manifest.write_manifest(
    config.model_dir,
    run_metrics,
    dataclasses.asdict(config),
    [metrics_path, exports.saved_model_dir, *tflite_dirs, *drawn.values()],
  )
  return RunResult(
    model=model,
    metrics=run_metrics,
    saved_model_dir=exports.saved_model_dir,
    tflite_paths=exports.tflite_paths,
    tflite_report=exports.tflite_report,
    pictures=drawn,
  )


def runnable_steps_per_execution(config: TrainConfig, replicas: int) -> int:
  """--steps_per_execution as Keras can run it: the flag trades speed only, never results.

  Keras runs whole executions, so a value that does not divide --eval_every would train extra steps
  every epoch (100 per call with --eval_every=20 trains 100 steps per epoch): use the largest
  divisor of both. On several replicas Keras 3 fails with more than one step per execution ("You
  must feed a value for placeholder tensor", keras-team/keras#19246): use 1.
  """
  if replicas > 1:
    return 1
  return math.gcd(config.steps_per_execution, config.eval_every)


def train_model(
  config: TrainConfig,
  datasets: splits.Datasets,
  strategy,
  log: Callable[[str], None] = logging.info,
  callbacks: tuple = (),
) -> keras.Model:
  """Fits the model, resuming from `<model_dir>/checkpoints` if a run with the same flags was cut.

  `callbacks` are added to kmnist's own (the benchmark's clock, for one).
  """
  steps_per_execution = runnable_steps_per_execution(config, strategy.num_replicas_in_sync)
  if steps_per_execution != config.steps_per_execution:
    logging.warning(
      "--steps_per_execution=%d runs as %d here (see train.runnable_steps_per_execution); "
      "it only changes speed",
      config.steps_per_execution,
      steps_per_execution,
    )
  in_cluster = distribute.cluster_task(strategy) is not None
  if in_cluster:
    # Workers would all have to resume from the same step, each from checkpoints of its own: a
    # cluster run starts at step 0 and every worker saves (a collective step) into a scratch
    # directory removed at the end.
    scratch = tempfile.TemporaryDirectory(prefix="kmnist-checkpoints-")
    checkpoint_dir = Path(scratch.name)
  else:
    checkpoint_dir = Path(config.model_dir) / "checkpoints"
  if config.restart:
    checkpoints.discard(checkpoint_dir)
  with strategy.scope():
    model = optimization.compile_model(registry.build(config.model), config, steps_per_execution)
    checkpointer = checkpoints.Checkpointer(
      checkpoint_dir, model, run_values={**config.resume_values(), "data": datasets.fingerprint}
    )
  start_step = checkpointer.restore(log)
  if start_step == config.steps:
    log(
      f"Already trained to step {start_step} ({checkpoint_dir}); evaluating and exporting it "
      f"again (--restart to retrain)."
    )
  elif start_step:
    log(
      f"Resuming at step {start_step} of {config.steps} from {checkpoint_dir} "
      "(--restart to start over)."
    )
  kmnist_callbacks = [
    checkpoints.StopOnNonFinite(config),  # first: nothing non-finite is saved
    checkpointer.callback(),
  ]
  logs_dir = os.path.join(config.model_dir, "logs")
  if distribute.is_chief(strategy):
    # Loss and accuracy per --eval_every steps in logs/train, validation in logs/validation.
    kmnist_callbacks.append(keras.callbacks.TensorBoard(log_dir=logs_dir))
  with disk.reported(logs_dir):  # the TensorBoard writer's; checkpoints report their own
    fit(model, config, datasets, strategy, start_step, kmnist_callbacks + list(callbacks))
  if in_cluster:
    scratch.cleanup()
  return model


def fit(model, config: TrainConfig, datasets: splits.Datasets, strategy, start_step, callbacks):
  with interrupt.between_steps() as on_ctrl_c:  # last: a Ctrl-C waits for the epoch's checkpoint
    model.fit(
      # The stream is a function of the seed alone: skipping what was seen resumes it exactly.
      batches.training_batches(config, datasets.train, strategy, start_step),
      initial_epoch=start_step // config.eval_every,
      epochs=config.steps // config.eval_every,
      steps_per_epoch=config.eval_every,
      validation_data=input_pipeline.eval_dataset(datasets.validation, config.batch_size),
      callbacks=[*callbacks, on_ctrl_c],
      shuffle=False,  # The tf.data pipeline shuffles, reproducibly under the seed.
      verbose=2 if not sys.stdout.isatty() else 1,
    )
