"""kmnist-predict, run as a user runs it: files in, one line per digit out, one line per bad
file, exit codes."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from kmnist.export import bundle, saved_model
from kmnist.predict import model_paths


def run_predict(*args, timeout=120):
  return subprocess.run(
    [sys.executable, "-m", "kmnist.cli.predict", *map(str, args)],
    capture_output=True,
    text=True,
    timeout=timeout,
  )


@pytest.fixture(scope="module")
def synthetic_export(tmp_path_factory, trained_model):
  return saved_model.export_saved_model(
    trained_model, tmp_path_factory.mktemp("predict") / "saved_model"
  )


def test_classifies_good_files_and_names_bad_ones(tmp_path, synthetic_export, mnist_digits):
  digits = mnist_digits.images
  Image.fromarray(digits[0]).save(tmp_path / "a.png")
  np.save(tmp_path / "b.npy", digits[1:4])
  (tmp_path / "c.png").write_text("not an image")
  result = run_predict(
    f"--model={synthetic_export}",
    tmp_path / "a.png",
    tmp_path / "b.npy",
    tmp_path / "c.png",
    tmp_path / "missing.png",
  )
  assert result.returncode == 1
  lines = result.stdout.strip().splitlines()
  assert [line.split(":")[0] for line in lines] == [str(tmp_path / "a.png")] + [
    f"{tmp_path / 'b.npy'}[{i}]" for i in range(3)
  ]
  expected = saved_model.predict_saved_model(synthetic_export, digits[:4])["class_id"]
  assert [int(line.split(": ")[1].split()[0]) for line in lines] == list(expected)
  errors = [
    line for line in result.stderr.splitlines() if line.startswith("kmnist-predict: error:")
  ]
  assert errors == [
    f"kmnist-predict: error: {tmp_path / 'c.png'}: not a readable image "
    "(UnidentifiedImageError); "
    f"give a PNG of one digit",
    f"kmnist-predict: error: {tmp_path / 'missing.png'}: no such file",
  ]
  assert "Traceback" not in result.stderr


def test_json_output(tmp_path, synthetic_export, mnist_digits):
  Image.fromarray(mnist_digits.images[0]).save(tmp_path / "a.png")
  (tmp_path / "b.npy").write_bytes(b"\x93NUMPY junk")
  result = run_predict(
    f"--model={synthetic_export}", "--json", "--top_k=2", tmp_path / "a.png", tmp_path / "b.npy"
  )
  assert result.returncode == 1, result.stderr[-2000:]
  document = json.loads(result.stdout)  # one document, though written as the results came
  (prediction,) = document["predictions"]
  expected = saved_model.predict_saved_model(synthetic_export, mnist_digits.images[:1])
  assert prediction["class_id"] == expected["class_id"][0]
  assert (
    len(prediction["top"]) == 2
    and prediction["top"][0]["probability"] >= prediction["top"][1]["probability"]
  )
  assert document["model"] == str(synthetic_export)
  assert document["errors"] == [
    f"{tmp_path / 'b.npy'}: not a readable .npy array (ValueError); save one with numpy.save"
  ]


def test_any_file_gets_one_line_and_the_good_ones_are_still_classified(
  tmp_path, synthetic_export, mnist_digits
):
  # One of each kind of bad input, the generated variety being in test_predict_images.py and
  # test_predict_arrays.py; here: what the command prints for them.
  rng = np.random.default_rng(0)
  bad = {
    "empty.png": b"",
    "random.png": rng.bytes(500),
    "cut.png": None,  # the good picture's first 60 bytes, below
    "lying.npy": b"\x93NUMPY\x01\x00v\x00"
    + b"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 784), }".ljust(117)
    + b"\n",
    "empty.npy": b"",
  }
  Image.fromarray(mnist_digits.images[0]).save(tmp_path / "good.png")
  bad["cut.png"] = (tmp_path / "good.png").read_bytes()[:60]
  for name, content in bad.items():
    (tmp_path / name).write_bytes(content)
  Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "blank.png")
  np.save(tmp_path / "noise.npy", rng.integers(0, 256, (28, 28)).astype(np.uint8))
  names = ["good.png", *bad, "blank.png", "noise.npy"]
  result = run_predict(f"--model={synthetic_export}", *[tmp_path / n for n in names])
  assert result.returncode == 1
  assert [line.split(":")[0] for line in result.stdout.splitlines()] == [str(tmp_path / "good.png")]
  errors = [line for line in result.stderr.splitlines() if line.startswith("kmnist-predict: error")]
  assert [line.split(": ")[2] for line in errors] == [str(tmp_path / n) for n in names[1:]]
  assert "the picture is blank" in errors[-2] and "the picture is noise" in errors[-1]
  assert "Traceback" not in result.stderr


@pytest.mark.slow  # two commands; the bundle's predictions in process: test_predict_classify.py
def test_an_image_classifier_bundle_classifies_and_a_cut_one_is_one_line(
  tmp_path, classifier_bundles, mnist_digits
):
  model_bytes = classifier_bundles["int8_classifier"]
  (tmp_path / "kmnist_int8_classifier.tflite").write_bytes(model_bytes)
  np.save(tmp_path / "digits.npy", mnist_digits.images[:5])
  result = run_predict(
    f"--model={tmp_path / 'kmnist_int8_classifier.tflite'}", "--json", tmp_path / "digits.npy"
  )
  assert result.returncode == 0, result.stderr[-2000:]
  predictions = json.loads(result.stdout)["predictions"]
  expected = bundle.predict_bundle(model_bytes, mnist_digits.images[:5])
  assert [p["class_id"] for p in predictions] == list(expected["class_id"])
  assert predictions[0]["top"][0]["probability"] == round(
    float(expected["probabilities"][0].max()), 4
  )
  (tmp_path / "cut.tflite").write_bytes(model_bytes[: len(model_bytes) // 2])
  result = run_predict(f"--model={tmp_path / 'cut.tflite'}", tmp_path / "digits.npy")
  assert result.returncode == 2 and result.stdout == ""
  (line,) = result.stderr.strip().splitlines()
  assert line.startswith(f"kmnist-predict: error: --model={tmp_path / 'cut.tflite'} could not be")
  assert line.endswith("give an export written by kmnist-train")


def test_a_model_that_is_not_one_exits_2_before_tensorflow(tmp_path):
  # A broken model (loaded by TensorFlow) is refused the same way: tests/test_predict_classify.py.
  start = time.monotonic()
  result = run_predict(f"--model={tmp_path}", tmp_path / "a.png")
  print(f"refused in {time.monotonic() - start:.2f} s")
  assert result.returncode == 2
  assert (
    f"kmnist-predict: error: --model={tmp_path} is not a SavedModel directory (no saved_model.pb)"
    " nor a .tflite file" in result.stderr
  )
  assert "Traceback" not in result.stderr


def write_user_pictures(directory, split, n=200):
  """Test-set digits as a user would have them: half MNIST-sized, half as big dark-on-light
  colour pictures."""
  paths = []
  for i in range(n):
    digit = split.images[i]
    path = directory / f"{i}_{split.labels[i]}.png"
    if i % 2:
      Image.fromarray(255 - digit).resize((112, 112), Image.Resampling.BICUBIC).convert("RGB").save(
        path
      )
    else:
      Image.fromarray(digit).save(path)
    paths.append(path)
  return paths


@pytest.mark.slow
@pytest.mark.parametrize(
  "model", [None, "tflite/1/kmnist_float.tflite", "tflite/1/kmnist_int8_classifier.tflite"]
)
def test_the_reference_export_reads_users_pictures(tmp_path, real_datasets, model):
  paths = write_user_pictures(tmp_path, real_datasets.test)
  flags = (
    [] if model is None else [f"--model={model_paths.reference_export() / model}"]
  )  # None: the default
  result = run_predict(*flags, "--json", *paths)
  assert result.returncode == 0, result.stderr[-2000:]
  predictions = json.loads(result.stdout)["predictions"]
  correct = [p["class_id"] == int(p["file"].rsplit("_", 1)[1].split(".")[0]) for p in predictions]
  assert len(correct) == len(paths)
  print(f"{model or 'default SavedModel'}: {np.mean(correct):.3f} of {len(paths)} pictures correct")
  assert np.mean(correct) >= 0.90


def peak_rss_kib(*args) -> tuple[int, int, str]:
  """(peak resident memory in KiB, exit code, stdout) of one kmnist-predict."""
  with open(os.devnull, "w") as devnull:
    process = subprocess.Popen(
      [sys.executable, "-m", "kmnist.cli.predict", *map(str, args)],
      stdout=subprocess.PIPE,
      stderr=devnull,
      text=True,
    )
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
  return usage.ru_maxrss, os.waitstatus_to_exitcode(status), out


@pytest.mark.slow
def test_memory_stays_bounded_whatever_the_files_claim_or_hold(tmp_path, mnist_digits):
  from kmnist.predict import arrays

  Image.fromarray(mnist_digits.images[0]).save(tmp_path / "good.png")
  count = 20 * arrays.CHUNK  # an honest array much bigger than the chunk kmnist reads at a time
  big = np.resize(mnist_digits.images, (count, 28, 28)).astype(np.float32) / 255
  np.save(tmp_path / "big.npy", big)
  header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 784), }"
  (tmp_path / "lying.npy").write_bytes(b"\x93NUMPY\x01\x00v\x00" + header.ljust(117) + b"\n")
  one, code, _ = peak_rss_kib(tmp_path / "good.png")
  assert code == 0
  many, code, out = peak_rss_kib(
    tmp_path / "good.png", tmp_path / "big.npy", tmp_path / "lying.npy"
  )
  assert code == 1 and len(out.splitlines()) == 1 + count
  print(
    f"peak RSS: {one / 1024:.0f} MiB for one picture, {many / 1024:.0f} MiB with "
    f"{count:,} more digits ({big.nbytes / 2**20:.0f} MiB) and a header claiming 6 TB"
  )
  assert (many - one) * 1024 < big.nbytes / 2
