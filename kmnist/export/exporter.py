"""Every export of a trained model written and checked against Keras: `export_and_verify`.

Each version directory appears whole or not at all (written under a hidden name, then renamed),
and in an order a polling server can rely on: the SavedModel is written and checked (checks.py)
while still hidden, then `tflite/<version>/` appears, then the SavedModel. So a version a server
can see has passed its check, and its phone files are in place from its first moment. A SavedModel
that fails its check never appears, nor does anything else. A TFLite variant that fails to convert
or fails its check is left out, but not the rest: `tflite/<version>/` still appears with the
variants that passed, `labels.txt` and the report (which names the failure), the SavedModel too,
and then the export raises, naming variant and cause. Both directories' records (record.pair)
carry one export id, and the SavedModel's names its TFLite directory.
"""

import contextlib
import dataclasses
import shutil
import tempfile
from pathlib import Path

import numpy as np

from kmnist.data.spec import NUM_CLASSES
from kmnist.data.splits import Datasets, Split
from kmnist.export import bundle, formats, metadata, record, report, saved_model, tflite
from kmnist.export.checks import check_mediapipe, check_outputs
from kmnist.export.formats import TFLITE_VARIANTS
from kmnist.models import registry
from kmnist.util import disk, files
from kmnist.util.errors import KmnistError, one_line
from kmnist.util.stopwatch import Stopwatch


@dataclasses.dataclass(frozen=True)
class Exports:
  saved_model_dir: Path
  tflite_paths: dict  # variant -> path of its .tflite
  tflite_report: dict  # as in tflite_report.json


def one_digit_per_class(split: Split) -> np.ndarray:
  """A handful of real digits (the first of each class present) for TF Serving's warmup requests."""
  firsts = [np.flatnonzero(split.labels == c)[0] for c in np.unique(split.labels)]
  return split.images[firsts]


def export_and_verify(
  model,
  datasets: Datasets,
  export_dir,
  version: int | None = None,
  tflite_variants=TFLITE_VARIANTS,
  chief: bool = True,
  reference_logits: np.ndarray | None = None,
  about: dict | None = None,
  mediapipe_check: bool = False,
  clock: Stopwatch | None = None,
) -> Exports | None:
  """Writes the SavedModel and the TFLite models, scored on the test images (int8 calibrated on the
  training images). Raises KmnistError if any export fails, after keeping what passed (see the
  module docstring).

  Under a multi-worker strategy every worker calls this: the SavedModel write is a collective
  operation. A non-chief worker (`chief=False`) stops after it and gets None; only the chief checks
  and converts. `about` (kmnist.export.record.make) is written into both version directories,
  saying what the export is. `mediapipe_check` also runs each bundle through MediaPipe's
  ImageClassifier (the `mobile` extra), held to its LiteRT accuracy. `clock` gets the seconds of
  each export and each check, as stages named `export: ...`.
  """
  clock = clock or Stopwatch()
  test = datasets.test
  # The Keras model's own test logits, the yardstick of every export (computed here unless the
  # caller has them).
  reference = (
    registry.predict_logits(model, test.images) if reference_logits is None else reference_logits
  )
  sm_base, tfl_base = Path(export_dir) / "saved_model", Path(export_dir) / "tflite"
  version = files.free_version([sm_base, tfl_base], version)  # one number names the pair
  sm_about, tfl_about = record.pair(about, version) if about is not None else (None, None)
  with files.staged_directory(sm_base / str(version)) as staged:
    with clock("export: saved_model"):
      saved_model.write_saved_model(
        model, staged.path, version, one_digit_per_class(test), sm_about
      )
    if not chief:
      staged.publish()
      return None
    # Checked while hidden: a SavedModel that fails never appears, so no server can load it.
    with clock("export: saved_model check"):
      outputs = saved_model.predict_saved_model(staged.path, test.images)
      check_outputs("saved_model", outputs, reference, test.labels)
    # The int8 files' calibration images, chosen by the model's logits on the training split.
    calibration = None
    if any(variant in formats.INT8_VARIANTS for variant in tflite_variants):
      with clock("export: int8 calibration images"):
        train = datasets.train.images
        calibration = tflite.calibration_images(train, registry.predict_logits(model, train))
    sm_dir, tfl_dir = staged.final_path, tfl_base / str(version)
    tflite_report = report.new_report(tfl_dir, sm_dir, datasets, reference, calibration)
    with files.atomic_directory(tfl_dir) as tmp:
      for variant in tflite_variants:
        tflite_report["variants"].append(
          export_variant(
            variant,
            tmp,
            model,
            staged.path,
            datasets,
            reference,
            about,
            version,
            calibration,
            mediapipe_check=mediapipe_check,
            clock=clock,
          )
        )
      (tmp / formats.LABELS_FILENAME).write_bytes(metadata.labels_file(NUM_CLASSES))
      report.write(tmp, tflite_report)
      if tfl_about is not None:
        record.write(tmp, tfl_about, version)
    # Last: the phone files are in place before a server can see the version.
    staged.publish()

  rows = tflite_report["variants"]
  failed = [row for row in rows if "error" in row]
  if failed:
    kept = ", ".join(row["file"] for row in rows if "file" in row) or "no model"
    raise KmnistError(
      "TFLite export failed: "
      + "; ".join(f"{row['variant']}: {row['error']}" for row in failed)
      + f". Kept the SavedModel {sm_dir} and {kept} in {tfl_dir} (see {report.MARKDOWN_NAME} "
      "there)"
    )
  paths = {row["variant"]: tfl_dir / row["file"] for row in rows}
  return Exports(saved_model_dir=sm_dir, tflite_paths=paths, tflite_report=tflite_report)


def export_variant(
  variant: str,
  directory: Path,
  model,
  sm_dir,
  datasets: Datasets,
  reference,
  about,
  version,
  calibration=None,
  mediapipe_check: bool = False,
  clock: Stopwatch | None = None,
) -> dict:
  """Converts, checks and writes one TFLite variant into `directory`. Returns its report row: the
  figures, or the error (and no file) if it failed. `about` and `version` go into a bundle's
  metadata; `calibration` (tflite.calibration_images) calibrates the int8 ones; `mediapipe_check`
  runs a bundle through MediaPipe too; `clock` gets the seconds of its export and its check."""
  test, classifier = datasets.test, variant in formats.CLASSIFIER_VARIANTS
  clock = clock or Stopwatch()
  try:
    # The int8 conversion and the bundles write their source SavedModel into the temporary
    # directory.
    with disk.reported(tempfile.gettempdir()), clock(f"export: {variant}"):
      if classifier:
        model_bytes = bundle.convert(variant, model, calibration)
        model_bytes = bundle.with_metadata(model_bytes, variant, about, version)
      else:
        model_bytes = tflite.convert(variant, sm_dir, model, calibration)
    with clock(f"export: {variant} check"):
      predict = bundle.predict_bundle if classifier else tflite.predict_tflite
      scores = check_outputs(variant, predict(model_bytes, test.images), reference, test.labels)
    if classifier:
      scores["mediapipe"] = None
      if mediapipe_check:
        with clock(f"export: {variant} MediaPipe check"):
          scores["mediapipe"] = mediapipe_scores(variant, model_bytes, test, scores)
  except disk.DiskError:
    raise  # the disk's fault, not the variant's: the whole export stops
  except Exception as e:  # This variant only; Ctrl-C (not an Exception) still stops the export.
    return {"variant": variant, "error": one_line(e)}
  (directory / formats.tflite_filename(variant)).write_bytes(model_bytes)
  return report.variant_row(variant, model_bytes, scores, test.images[0])


def mediapipe_scores(variant: str, model_bytes: bytes, test: Split, litert: dict) -> dict | None:
  """The bundle through MediaPipe's ImageClassifier on every test digit, checked against its LiteRT
  scores (--mediapipe_check: seconds per bundle, so not in every run)."""
  # Imported here: the extra is optional, and importing mediapipe loads OpenCV as well.
  from kmnist.export import mediapipe_check  # noqa: PLC0415

  through = mediapipe_check.score(model_bytes, test.images, test.labels)
  check_mediapipe(variant, through, litert)
  return through


def remove_version(path: Path) -> None:
  """Takes back a version directory this run wrote, if the disk lets it."""
  with contextlib.suppress(OSError):
    shutil.rmtree(path)
