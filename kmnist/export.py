"""The export step: SavedModel for serving, TFLite for phones, each checked against the Keras model before it counts.

Layout under the export base (TF Serving watches `saved_model/`):
    <export_dir>/saved_model/<version>/   SavedModel
    <export_dir>/tflite/<version>/        kmnist_<variant>.tflite
"""

from pathlib import Path

import numpy as np

from kmnist import files, saved_model, tflite
from kmnist.data import Split
from kmnist.errors import KmnistError

# A correct export computes the same function as the Keras model; only float rounding may differ.
MAX_LOGIT_DIFF = {"saved_model": 1e-4, "float": 1e-3}
MIN_AGREEMENT = {"saved_model": 1.0, "float": 0.9999}


def keras_logits(model, images_uint8: np.ndarray) -> np.ndarray:
  return model.predict(images_uint8.astype(np.float32) / 255.0, batch_size=10_000, verbose=0)


def check_outputs(name: str, outputs: dict, reference_logits: np.ndarray) -> dict:
  """Compares an export's outputs with the Keras logits; raises if they disagree beyond rounding."""
  agreement = float(np.mean(outputs["class_id"] == reference_logits.argmax(-1)))
  max_diff = float(np.max(np.abs(outputs["logits"] - reference_logits)))
  if not (agreement >= MIN_AGREEMENT[name] and max_diff <= MAX_LOGIT_DIFF[name]):
    raise KmnistError(
        f"the {name} export does not reproduce the Keras model (argmax agreement {agreement:.4%}, "
        f"max |logit difference| {max_diff:.3g}); nothing was kept. This is a bug in kmnist: please report it")
  return {"argmax_agreement": agreement, "max_abs_logit_diff": max_diff}


def export_and_verify(model, test: Split, export_dir, version: int | None = None, chief: bool = True):
  """Writes the SavedModel and the TFLite models, verified on the test images. Returns (saved_model_dir, {variant: path}).

  Under a multi-worker strategy every worker calls this: the Keras predictions and the SavedModel write are
  collective operations. A non-chief worker (`chief=False`) stops after them; only the chief checks and converts.
  """
  export_dir = Path(export_dir)
  reference = keras_logits(model, test.images)
  sm_base, tfl_base = export_dir / "saved_model", export_dir / "tflite"
  if version is None:
    # One version number names the pair, so the next free number is free in both places.
    version = max(saved_model.next_version(sm_base), saved_model.next_version(tfl_base))
  sm_dir = saved_model.export_saved_model(model, sm_base, version)
  if not chief:
    return sm_dir, {}
  try:
    check_outputs("saved_model", saved_model.predict_saved_model(sm_dir, test.images), reference)
    tflite_paths = {}
    with files.atomic_directory(tfl_base / str(version)) as tmp:
      for variant in tflite.VARIANTS:
        model_bytes = tflite.convert(sm_dir, variant)
        check_outputs(variant, tflite.predict_tflite(model_bytes, test.images), reference)
        (tmp / tflite.model_filename(variant)).write_bytes(model_bytes)
        tflite_paths[variant] = tfl_base / str(version) / tflite.model_filename(variant)
  except BaseException:
    import shutil
    shutil.rmtree(sm_dir, ignore_errors=True)  # An export that failed its check must not be served.
    raise
  return sm_dir, tflite_paths
