"""kmnist-train as a user runs it, beside the tutorial's own program (`python -m benchmarks`).

`kmnist-train` (README's command: data prepared, each run in an empty folder) and the tutorial's TF1
program (benchmarks/tf1_program.py) take turns, `repeats` times each, so that both meet the same
load; the figures are their median wall times, the ratio, and where kmnist's seconds go, from the
stages kmnist-train writes into metrics.json ("seconds"). Then the first run on an empty data
directory, where TFDS prepares MNIST, against the prepared one. One run's console output is kept:
README shows it (docs/generate.py).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def kmnist_train() -> list[str]:
  """The installed console script, as a user runs it (else the module)."""
  script = Path(sys.executable).with_name("kmnist-train")
  return [str(script)] if script.is_file() else [sys.executable, "-m", "kmnist.cli.train"]


def timed(args, cwd, env=None) -> tuple[float, str]:
  """Wall seconds and stdout of one command; a failure stops the benchmark with its stderr."""
  start = time.perf_counter()
  result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
  seconds = time.perf_counter() - start
  if result.returncode:
    raise RuntimeError(f"{' '.join(map(str, args))} failed: {result.stderr[-2000:]}")
  return seconds, result.stdout


def kmnist_run(data_dir: str, scratch: Path, name: str) -> dict:
  """One `kmnist-train` in an empty folder: its wall time, its stages and its console output."""
  run_dir = scratch / name
  run_dir.mkdir()
  seconds, stdout = timed([*kmnist_train(), f"--data_dir={data_dir}"], run_dir)
  metrics = json.loads((run_dir / "runs" / "kmnist" / "metrics.json").read_text())
  return {
    "seconds": seconds,
    "stages": metrics["seconds"],
    "test_accuracy": metrics["test_accuracy"],
    "stdout": stdout,
  }


def tf1_run() -> dict:
  """The tutorial's program reading the MNIST files shipped in kmnist."""
  env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
  seconds, stdout = timed([sys.executable, "-m", "benchmarks.tf1_program"], None, env)
  return {"seconds": seconds, "test_accuracy": float(stdout.split()[-1])}


def measure(data_dir: str, repeats: int) -> dict:
  """The default command against the TF1 program, turn about; then the first run's preparation."""
  runs = {"kmnist": [], "tf1": []}
  with tempfile.TemporaryDirectory(prefix="kmnist-command-") as scratch:
    scratch = Path(scratch)
    kmnist_run(data_dir, scratch, "warm-up")  # the prepared data and the files in the page cache
    for i in range(repeats):
      runs["tf1"].append(tf1_run())
      runs["kmnist"].append(kmnist_run(data_dir, scratch, str(i)))
    first = kmnist_run(str(scratch / "empty_data_dir"), scratch, "first")
  kmnist = statistics.median(r["seconds"] for r in runs["kmnist"])
  tf1 = statistics.median(r["seconds"] for r in runs["tf1"])
  return {
    "repeats": repeats,
    "kmnist_seconds": [r["seconds"] for r in runs["kmnist"]],
    "tf1_seconds": [r["seconds"] for r in runs["tf1"]],
    "ratio": kmnist / tf1,
    "stages": median_stages(runs["kmnist"]),
    "test_accuracy": {
      "kmnist": runs["kmnist"][0]["test_accuracy"],
      "tf1": runs["tf1"][0]["test_accuracy"],
    },
    "first_run_seconds": first["seconds"],
    "first_run_ratio": first["seconds"] / kmnist,
    "stdout": runs["kmnist"][0]["stdout"],
  }


def stage_order() -> list:
  """The stages in the order a run goes through them (metrics.json keeps them sorted by name)."""
  from kmnist.export.formats import TFLITE_VARIANTS

  exports = [
    f"export: {v}{check}" for v in ("saved_model", *TFLITE_VARIANTS) for check in ("", " check")
  ]
  exports.insert(2, "export: int8 calibration images")
  return ["import", "data", "training", "evaluation", *exports, "pictures"]


def median_stages(runs: list) -> dict:
  """Each stage's median seconds over the runs, in the order they ran, and what no stage holds:
  Python's start-up, absl, writing metrics.json and MANIFEST.json."""
  order = {name: i for i, name in enumerate(stage_order())}
  names = sorted(runs[0]["stages"], key=lambda name: order.get(name, len(order)))
  stages = {name: statistics.median(r["stages"][name] for r in runs) for name in names}
  rest = statistics.median(r["seconds"] - sum(r["stages"].values()) for r in runs)
  return {"start-up and the rest": rest, **stages}


def commands_table(figures: dict) -> str:
  """The whole-command comparison, then kmnist's seconds stage by stage."""
  f = figures
  kmnist, tf1 = statistics.median(f["kmnist_seconds"]), statistics.median(f["tf1_seconds"])
  rows = [
    f"| command | median wall s (of {f['repeats']}) | runs | test accuracy |",
    "| --- | ---: | --- | ---: |",
    f"| `kmnist-train` (data prepared) | {kmnist:.2f} | "
    f"{', '.join(f'{s:.2f}' for s in f['kmnist_seconds'])} | {f['test_accuracy']['kmnist']:.4f} |",
    f"| the tutorial's TF1 program | {tf1:.2f} | "
    f"{', '.join(f'{s:.2f}' for s in f['tf1_seconds'])} | {f['test_accuracy']['tf1']:.4f} |",
    "",
    f"kmnist-train / TF1 program: **{f['ratio']:.2f}x**. The first run, preparing MNIST on an "
    f"empty data directory: {f['first_run_seconds']:.1f} s, {f['first_run_ratio']:.2f}x the "
    "prepared run.",
    "",
    "| kmnist-train's stage | median s |",
    "| --- | ---: |",
  ]
  rows += [f"| {name} | {seconds:.2f} |" for name, seconds in f["stages"].items()]
  return "\n".join(rows)


def table(figures: dict) -> str:
  """`python -m benchmarks`'s figures: the whole command against the TF1 program first; then the
  training loops, the exports."""
  loops = figures["training_loop"]
  rows = [commands_table(figures["end_to_end"]), ""] if "end_to_end" in figures else []
  if "cnn_command" in figures:
    from benchmarks import cnn_command  # TensorFlow, through keras-io's recipe

    rows += [cnn_command.table(figures["cnn_command"]), ""]
  rows += [
    "The training loop alone (its first call's tracing apart), on the same batches:",
    "",
    "| implementation (1000 steps x 100) | examples/s | seconds (steady) | test accuracy |",
    "| --- | ---: | ---: | ---: |",
  ]
  for name in ("kmnist", "numpy", "tf1"):
    f = loops[name]
    rows.append(
      f"| {name} | {f['examples_per_second']:,.0f} | {f['seconds_steady']:.3f} | "
      f"{f['test_accuracy']:.4f} |"
    )
  rows.append(
    f"\nkmnist tracing: {loops['kmnist']['tracing_seconds']:.2f} s; kmnist/NumPy throughput "
    f"{loops['kmnist_over_numpy']:.2f}x, kmnist/TF1 {loops['kmnist_over_tf1']:.2f}x"
  )
  ex = figures["export"]
  rows.append(f"\nSavedModel export: {ex['saved_model_export_seconds']:.2f} s\n")
  rows.append(
    "| TFLite variant | convert s | bytes | 1 image µs | batch of 1000 ms |\n| --- | ---: | ---: "
    "| ---: | ---: |"
  )
  for key, f in ex.items():
    if key.startswith("tflite_"):
      rows.append(
        f"| {key[7:]} | {f['convert_seconds']:.2f} | {f['size_bytes']:,} | "
        f"{f['single_image_invoke_us']:.1f} | {f['batch_1000_ms']:.2f} |"
      )
  return "\n".join(rows)
