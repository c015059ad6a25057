"""What the export stage writes, by name: the TFLite variants, the labels file.

No TensorFlow here: the training configuration checks --tflite against these names before
TensorFlow starts, and readers of an export find its files by them.
"""

from kmnist.util.errors import KmnistError

TFLITE_VARIANTS = ("float", "dynamic", "int8")
LABELS_FILENAME = "labels.txt"  # line i names class i: the digits 0-9


def tflite_filename(variant: str) -> str:
  return f"kmnist_{variant}.tflite"


def check_tflite_variants(variants: tuple[str, ...]) -> None:
  """--tflite names each variant at most once, and at least one."""
  flag = f"--tflite={','.join(variants)}"
  choices = f"use a comma-separated list of {', '.join(TFLITE_VARIANTS)}"
  unknown = [v for v in variants if v not in TFLITE_VARIANTS]
  if unknown:
    raise KmnistError(f"{flag}: {unknown[0]!r} is not a TFLite variant; {choices}")
  if not variants:
    raise KmnistError(f"{flag} names no TFLite variant; {choices} (default: all three)")
  if len(set(variants)) != len(variants):
    raise KmnistError(f"{flag} names a variant twice; {choices}, each once")
