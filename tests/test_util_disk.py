"""Writes the disk refuses: every kind of write kmnist does, on a really full or read-only disk (a
tmpfs, as root) or under a file size limit (any user), answers one DiskError naming the path and
the fix, leaves what a reader would open whole, and succeeds once the disk is fixed."""

import ctypes
import errno
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_file_loader

from kmnist.data import mnist, splits
from kmnist.export import exporter, saved_model
from kmnist.models import registry
from kmnist.training import checkpoints, optimization, train
from kmnist.training.config import TrainConfig
from kmnist.util import disk, files, manifest
from kmnist.visualize import figures, pictures

from faults import IS_ROOT, fault_under, visible_files
from train_helpers import small_config

# As root (CI) the real thing, a full and a read-only tmpfs; otherwise the kernel's file size limit.
FAULT_KINDS = ["disk full", "read-only"] if IS_ROOT else ["file size limit"]


def test_os_errors_name_the_path_the_problem_and_the_fix(tmp_path):
  error = disk.explain(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "m.json")))
  assert str(error) == (
    f"could not write {tmp_path / 'm.json'}: the disk is full (No space left on device); free "
    f"space on it (df {tmp_path} shows how much is left), {disk.RERUN}"
  )
  error = disk.explain(PermissionError(errno.EACCES, "Permission denied"), tmp_path)
  assert f"make {tmp_path} writable for this user (chmod u+w {tmp_path})" in str(error)
  assert "read-only" in str(disk.explain(OSError(errno.EROFS, "x"), tmp_path))


def test_tensorflow_errors_are_told_by_their_message():
  # The shape of TensorFlow's file errors: the node, the path, then the C library's strerror.
  error = tf.errors.ResourceExhaustedError(
    None,
    None,
    "{{function_node __wrapped__SaveV2}} /r/checkpoints/ckpt-40_temp/part-0.data; No space left "
    "on device [Op:SaveV2]",
  )
  assert disk.path_in(error) == Path("/r/checkpoints/ckpt-40_temp/part-0.data")
  assert str(disk.explain(error)).startswith(
    "could not write /r/checkpoints/ckpt-40_temp/part-0.data: the disk is full"
  )
  assert str(disk.explain(error, "/r/checkpoints")).startswith("could not write /r/checkpoints:")


def test_no_usable_temporary_directory_says_what_to_do():
  error = FileNotFoundError(errno.ENOENT, f"{disk.NO_TEMPORARY} in ['/tmp', '/var/tmp']")
  assert str(disk.explain(error)).startswith(
    f"{disk.NO_TEMPORARY} in ['/tmp', '/var/tmp']: each is full, read-only or not writable; free "
    "space in one or set TMPDIR to a writable directory"
  )


def test_other_errors_pass_through_unchanged():
  assert disk.explain(tf.errors.NotFoundError(None, None, "no such op")) is None
  assert disk.explain(OSError(errno.ENOENT, "No such file or directory")) is None
  assert disk.explain(ValueError("No space left on device")) is None  # no errno, no TF message
  with pytest.raises(ValueError), disk.reported("/x"):
    raise ValueError("not a disk's")


# Each writer: setup(root) writes what was there before, and returns write(trigger) and the path the
# error must name; write calls trigger() where the fault must strike (just before, by default).
def checkpoint_writer(root, _):
  model = optimization.compile_model(registry.build(), TrainConfig())
  saver = checkpoints.Checkpointer(
    root / "checkpoints", model, {"steps": 40, "eval_every": 20, "data": "x"}
  )
  saver.save()  # step 0, before the fault

  def write(trigger):
    model.optimizer.iterations.assign(20)
    trigger()
    saver.save()

  return write, root / "checkpoints"


def tensorboard_writer(root, context):
  config = small_config(root, steps=20, eval_every=20, steps_per_execution=20)
  # The logs alone: no checkpoint is saved (a file system cannot become read-only while a writer
  # holds a file open, so the fault strikes before training starts).
  context["monkeypatch"].setattr(checkpoints.Checkpointer, "save", lambda self: None)

  def write(trigger):
    trigger()
    train.train_model(config, context["datasets"], tf.distribute.get_strategy())

  return write, Path(config.model_dir) / "logs"


def saved_model_writer(root, context):
  saved_model.export_saved_model(context["model"], root / "saved_model", 1)

  def write(trigger):
    trigger()
    saved_model.export_saved_model(context["model"], root / "saved_model")

  return write, root / "saved_model" / "2"


def tflite_writer(root, context):
  def write(trigger):
    original = saved_model.write_saved_model

    def then_strike(*args, **kwargs):
      original(*args, **kwargs)
      trigger()  # after the SavedModel: the TFLite version directory is what fails

    with pytest.MonkeyPatch.context() as patch:
      patch.setattr(saved_model, "write_saved_model", then_strike)
      exporter.export_and_verify(context["model"], context["datasets"], root, None, ("float",))

  return write, root / "tflite" / "1"


def file_writer(name, write_file):
  def setup(root, _):
    write_file(root / name, 0)

    def write(trigger):
      trigger()
      write_file(root / name, 1)

    return write, root / name

  return setup


def picture(path, value):
  figures.save_png(figures.confusion_figure(np.full((10, 10), value)), path)


def manifest_file(path, value):
  manifest.write_manifest(path.parent, {"test_accuracy": value, "test_loss": 0}, {}, [])


def cache(path, value):
  split = splits.Split(np.full((3, 28, 28), value, np.uint8), np.arange(3))
  mnist.write_cache(path, splits.Datasets(split, split, split))


WRITERS = {
  "checkpoint": checkpoint_writer,
  "tensorboard": tensorboard_writer,
  "saved_model": saved_model_writer,
  "tflite": tflite_writer,
  "picture": file_writer("weights.png", picture),
  "metrics": file_writer("metrics.json", lambda p, v: files.write_json_atomic(p, {"v": v})),
  "manifest": file_writer("MANIFEST.json", manifest_file),
  "cache": file_writer("mnist/3.0.1/kmnist_splits.npz", cache),
}


def contents(root: Path) -> dict:
  return {name: (root / name).read_bytes() for name in visible_files(root)}


@pytest.mark.parametrize("kind", FAULT_KINDS)
@pytest.mark.parametrize("writer", WRITERS)
def test_a_refused_write_is_one_line_leaves_the_old_files_and_succeeds_when_fixed(
  tmp_path, kind, writer, trained_model, synthetic_datasets, monkeypatch
):
  context = {"model": trained_model, "datasets": synthetic_datasets, "monkeypatch": monkeypatch}
  with fault_under(kind, tmp_path / "disk") as fault:
    root = fault.root
    write, path = WRITERS[writer](root, context)
    before = contents(root)
    try:
      with pytest.raises(disk.DiskError) as raised:
        write(fault.on)
    finally:
      fault.off()
    message = str(raised.value)
    assert message.startswith(f"could not write {path}: ") and f"({fault.strerror})" in message
    assert "\n" not in message and message.endswith(disk.RERUN)
    after = contents(root)
    if writer == "tensorboard":  # an append-only log: a cut last record is skipped by readers
      for events in (p for p in after if "events.out.tfevents" in p):
        list(event_file_loader.EventFileLoader(str(root / events)).Load())
    else:  # the TFLite files fail: the SavedModel, still hidden, never appeared
      assert after == before  # nothing new a reader would open, nothing old changed
    if writer == "checkpoint":  # the last whole checkpoint is the one a rerun resumes
      assert Path(tf.train.latest_checkpoint(root / "checkpoints")).name == "ckpt-0"
    write(lambda: None)  # the disk fixed, the same write succeeds


class StrikeAtEpoch(tf.keras.callbacks.Callback):
  """Turns the fault on when epoch `epoch` begins: after the checkpoints before it were saved."""

  def __init__(self, epoch, fault):
    super().__init__()
    self.epoch, self.fault = epoch, fault

  def on_epoch_begin(self, epoch, logs=None):
    if epoch == self.epoch:
      self.fault()


def injected_full_disk(monkeypatch):
  """Without root: the error TensorFlow raises for a full disk, at the second checkpoint's save."""
  original = tf.train.CheckpointManager.save

  def save(self, checkpoint_number=None, **kwargs):
    if checkpoint_number == 40 and not getattr(save, "struck", False):
      save.struck = True
      raise tf.errors.ResourceExhaustedError(
        None, None, f"{self.directory}/ckpt-40_temp/part-0; No space left on device"
      )
    return original(self, checkpoint_number=checkpoint_number, **kwargs)

  monkeypatch.setattr(tf.train.CheckpointManager, "save", save)


def test_a_full_disk_during_training_freed_and_rerun_gives_the_same_model_bytes(
  tmp_path, synthetic_datasets, monkeypatch
):
  whole = train.run(small_config(tmp_path / "whole"), datasets_override=synthetic_datasets)
  kind = "disk full" if IS_ROOT else "file size limit"  # the latter only to clean up: injected
  with fault_under(kind, tmp_path / "disk") as fault:
    config = small_config(fault.root)
    if IS_ROOT:
      strike = (StrikeAtEpoch(1, fault.on),)  # the disk fills up during the second epoch
    else:
      injected_full_disk(monkeypatch)
      strike = ()
    with pytest.raises(disk.DiskError, match=r"the disk is full \(No space left on device\)"):
      train.run(config, datasets_override=synthetic_datasets, callbacks=strike)
    if IS_ROOT:
      fault.off()
    run_dir = Path(config.model_dir)
    assert Path(tf.train.latest_checkpoint(run_dir / "checkpoints")).name == "ckpt-20"
    assert not [p for p in (run_dir / "checkpoints").iterdir() if "temp" in p.name]
    assert not (fault.root / "exported").exists()
    messages = []
    resumed = train.run(config, datasets_override=synthetic_datasets, log=messages.append)
    assert messages == [
      f"Resuming at step 20 of 60 from {run_dir / 'checkpoints'} (--restart to start over)."
    ]
    for a, b in zip(whole.model.get_weights(), resumed.model.get_weights(), strict=True):
      assert a.tobytes() == b.tobytes()
    assert resumed.saved_model_dir.name == whole.saved_model_dir.name == "1"
    assert resumed.tflite_paths["float"].read_bytes() == whole.tflite_paths["float"].read_bytes()
    variables = "variables/variables.data-00000-of-00001"
    assert (resumed.saved_model_dir / variables).read_bytes() == (
      whole.saved_model_dir / variables
    ).read_bytes()


# The same faults through whole runs (slow): for each kind of write, the fault strikes just before
# it, the run stops with the one line, and the same run again ends with the model an uninterrupted
# run makes, byte for byte.
@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, synthetic_datasets):
  root = tmp_path_factory.mktemp("uninterrupted")
  return train.run(small_config(root, visualize=True), datasets_override=synthetic_datasets)


def strike_before(monkeypatch, owner, name, trigger, when=lambda *args, **kwargs: True):
  """Makes `owner.name` turn the fault on before it runs (once, when `when` says so)."""
  original = getattr(owner, name)

  def striking(*args, **kwargs):
    if when(*args, **kwargs) and not striking.struck:
      striking.struck = True
      trigger()
    return original(*args, **kwargs)

  striking.struck = False
  monkeypatch.setattr(owner, name, striking)


def arm(writer, monkeypatch, trigger):
  """Where each kind of write's fault strikes; returns the callbacks the run needs for it."""

  if writer == "checkpoint":
    strike_before(
      monkeypatch,
      checkpoints.Checkpointer,
      "save",
      trigger,
      lambda self: checkpoints.optimizer_step(self.model) == 40,
    )
  elif writer == "saved_model":
    strike_before(monkeypatch, saved_model, "write_saved_model", trigger)
  elif writer == "tflite":
    strike_before(monkeypatch, exporter, "export_variant", trigger)
  elif writer == "picture":
    strike_before(monkeypatch, pictures, "write_pictures", trigger)
  elif writer == "metrics":
    strike_before(
      monkeypatch,
      files,
      "write_json_atomic",
      trigger,
      lambda path, obj: Path(path).name == "metrics.json",
    )
  elif writer == "manifest":
    strike_before(monkeypatch, manifest, "write_manifest", trigger)


# The directory each kind of write goes to gets the faulty disk: a file system with a file open for
# writing cannot become read-only, so the fault must not share a disk with a writer still open.
MOUNTS = {
  "checkpoint": lambda config: Path(config.model_dir) / "checkpoints",
  "tensorboard": lambda config: Path(config.model_dir) / "logs",
  "saved_model": lambda config: Path(config.export_dir),
  "tflite": lambda config: Path(config.export_dir),
  "picture": lambda config: Path(config.model_dir),
  "metrics": lambda config: Path(config.model_dir),
  "manifest": lambda config: Path(config.model_dir),
}


# Each writer on a real disk that refuses it, the two kinds taking turns (every writer with both
# kinds, as injected errors, in the fast test above).
REAL_DISK_FAULTS = [(writer, ("disk full", "read-only")[i % 2]) for i, writer in enumerate(MOUNTS)]


@pytest.mark.slow
@pytest.mark.parametrize("writer, kind", REAL_DISK_FAULTS)
def test_a_refused_write_mid_run_then_the_same_run_gives_the_same_model(
  tmp_path, kind, writer, uninterrupted, synthetic_datasets, monkeypatch
):
  config = small_config(tmp_path, visualize=True)
  with fault_under(kind, MOUNTS[writer](config)) as fault:
    if writer == "tensorboard":
      # From the start: its events files stay open while training (so the disk cannot become
      # read-only), and a full disk still takes the small appends that fit their last page.
      fault.on()
    else:
      arm(writer, monkeypatch, fault.on)
    try:
      with pytest.raises(disk.DiskError, match=f"\\({re.escape(fault.strerror)}\\)"):
        train.run(config, datasets_override=synthetic_datasets)
    finally:
      fault.off()
      monkeypatch.undo()
    resumed = train.run(config, datasets_override=synthetic_datasets)
    for a, b in zip(uninterrupted.model.get_weights(), resumed.model.get_weights(), strict=True):
      assert a.tobytes() == b.tobytes()
    # Even on a read-only disk no SavedModel appeared before its TFLite files: the same version.
    assert resumed.saved_model_dir.name == "1"
    assert resumed.tflite_paths["float"].read_bytes() == (
      uninterrupted.tflite_paths["float"].read_bytes()
    )
    for name, picture in uninterrupted.pictures.items():
      assert resumed.pictures[name].read_bytes() == picture.read_bytes()


# A directory whose permission is taken away mid-run, for real: root ignores permissions, so as
# root the run goes to a child without the capabilities that let it (CAP_DAC_OVERRIDE, ...).
PERMISSION_RUN = textwrap.dedent("""
    import sys
    from pathlib import Path
    import keras, numpy as np
    sys.path.insert(0, {tests_dir!r})
    from conftest import make_synthetic_datasets
    from kmnist.util import disk
    from kmnist.training import train
    from train_helpers import small_config

    root, datasets = Path(sys.argv[1]), make_synthetic_datasets()
    for case in ("checkpoints", "run"):
      config = small_config(root / case, visualize=True)
      target = Path(config.model_dir) / ("checkpoints" if case == "checkpoints" else "")

      class Revoke(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
          if epoch == 1:
            target.chmod(0o555)

      try:
        train.run(config, datasets_override=datasets, callbacks=(Revoke(),))
      except disk.DiskError as e:
        print("REFUSED", e, flush=True)
      target.chmod(0o755)
      result = train.run(config, datasets_override=datasets)
      np.savez(root / (case + ".npz"), *result.model.get_weights())
      print("TFLITE", result.tflite_paths["float"], flush=True)
    """).format(tests_dir=str(Path(__file__).resolve().parent))


def without_permission_override():
  """In the child, before exec: drop the capabilities that let root ignore permissions."""
  if IS_ROOT:
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
      if libc.prctl(24, capability, 0, 0, 0):  # PR_CAPBSET_DROP
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.mark.slow
def test_a_permission_taken_away_mid_run_then_restored_gives_the_same_model(
  tmp_path, uninterrupted
):
  result = subprocess.run(
    [sys.executable, "-c", PERMISSION_RUN, str(tmp_path)],
    capture_output=True,
    text=True,
    timeout=600,
    preexec_fn=without_permission_override,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  refused = [line for line in result.stdout.splitlines() if line.startswith("REFUSED")]
  for line, where in zip(refused, ("checkpoints/run/checkpoints", "run/run"), strict=True):
    directory = tmp_path / where
    assert line.startswith(f"REFUSED could not write {directory}") and (
      f"permission to write there was taken away (Permission denied); make {directory} "
      f"writable for this user (chmod u+w {directory})" in line
    ), line
  tflite = [
    Path(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("TFLITE")
  ]
  for case, path in zip(("checkpoints", "run"), tflite, strict=True):
    weights = np.load(tmp_path / f"{case}.npz")
    for a, b in zip(uninterrupted.model.get_weights(), weights.values(), strict=True):
      assert a.tobytes() == b.tobytes()
    assert path.read_bytes() == uninterrupted.tflite_paths["float"].read_bytes()
