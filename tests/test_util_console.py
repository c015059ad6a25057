"""The quiet console: exactly the C++ lines that are not for the user are held back (TensorFlow's
start-up lines, cuInit's failure on a machine without a GPU driver, the converter's fully_quantize,
LiteRT's XNNPACK line), while every other line, a real error above all, still shows in full, even
when the command crashes; and a run prints no line that looks like an error."""

import io
import os
import re
import subprocess
import sys

import pytest
import synthetic_cli

from kmnist.util import console

# The lines as TensorFlow 2.21 and LiteRT 2.3 print them on a machine without a GPU.
NOT_FOR_THE_USER = [
  "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
  "I0000 00:00:1795909683.021892   13585 port.cc:153] oneDNN custom operations are on. You may "
  "see slightly different numerical results due to floating-point round-off errors from "
  "different computation orders. To turn them off, set the environment variable "
  "`TF_ENABLE_ONEDNN_OPTS=0`.",
  "I0000 00:00:1795909683.022244   13585 cudart_stub.cc:31] Could not find cuda drivers on your "
  "machine, GPU will not be used.",
  "E0000 00:00:1795909685.745500   13585 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
  "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
  "fully_quantize: 0, inference_type: 6, input_inference_type: UINT8, output_inference_type: INT8",
  "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
]
REAL = [
  "E0000 00:00:1795909685.745500   13585 saver.cc:12] a real error, shown",
  "W1128 23:48:05.825292 140687605238656 train.py:163] a real warning, shown",
  "INFO: Created TensorFlow Lite XNNPACK delegate for CPU. (not exactly the line: shown)",
]


def run_quietly(body: str, **kwargs) -> subprocess.CompletedProcess:
  """`body` run in a fresh Python whose stderr goes through the filter."""
  program = "from kmnist.util import console\nconsole.quiet_stderr()\nimport os, sys, time\n" + body
  return subprocess.run(
    [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, **kwargs
  )


def writes(lines) -> str:
  return "".join(f"os.write(2, {(line + chr(10)).encode()!r})\n" for line in lines)


def test_exactly_the_lines_not_for_the_user_are_held_back():
  mixed = [REAL[0], *NOT_FOR_THE_USER[:3], REAL[1], *NOT_FOR_THE_USER[3:], REAL[2]]
  result = run_quietly(writes(mixed) + "print('python too', file=sys.stderr)\n")
  assert result.returncode == 0
  assert result.stderr.splitlines() == [*REAL, "python too"]


def test_the_same_lines_are_held_back_as_ray_shows_its_workers_lines():
  # Ray prints an actor's lines behind its name (coloured), and lines several printed alike once
  # more with a count; its placement-group cleaner is housekeeping of Ray's own, every line of it.
  worker, cleaner = (
    "\x1b[36m(RayTrainWorker pid=7, ip=10.0.0.2)\x1b[0m ",
    "(PlacementGroupCleaner pid=9) ",
  )
  repeated = "\x1b[32m [repeated 3x across cluster] (Ray deduplicates logs by default. ...)\x1b[0m"
  shown = [worker + REAL[0], worker + "Epoch 1/2"]
  held = [
    worker + NOT_FOR_THE_USER[0] + repeated,
    worker + NOT_FOR_THE_USER[2],
    worker + NOT_FOR_THE_USER[3],  # after "Could not find cuda drivers", from any of them
    cleaner + "Failed to query Ray Train Controller actor state. State API may be ...",
    cleaner + "Traceback (most recent call last):",
  ]
  result = run_quietly(writes([held[0], shown[0], *held[1:], shown[1]]))
  assert result.stderr.splitlines() == shown


def test_cuinit_failing_on_a_machine_with_a_driver_is_shown():
  # No "Could not find cuda drivers" first: a driver is there, and its failure matters.
  result = run_quietly(writes([NOT_FOR_THE_USER[3]]))
  assert result.stderr.splitlines() == [NOT_FOR_THE_USER[3]]


def test_a_crash_still_shows_its_last_lines_and_its_traceback_in_full():
  result = run_quietly(writes([REAL[0]]) + "os.write(2, b'no end of line yet')\nos.abort()\n")
  assert result.returncode < 0  # SIGABRT
  assert result.stderr == REAL[0] + "\nno end of line yet"
  result = run_quietly(writes(NOT_FOR_THE_USER) + "raise ValueError('from C++ or Python alike')")
  assert result.stderr.startswith("Traceback (most recent call last):\n")
  assert result.stderr.endswith("ValueError: from C++ or Python alike\n")


def test_a_line_without_its_end_is_shown_while_waiting():
  # A prompt or a progress line: shown though no newline follows, while the command goes on.
  program = (
    "from kmnist.util import console\nconsole.quiet_stderr()\nimport os, sys\n"
    "os.write(2, b'50%')\nsys.stdin.read()\nos.write(2, b'\\r100%\\n')\n"
  )
  process = subprocess.Popen(
    [sys.executable, "-c", program], stdin=subprocess.PIPE, stderr=subprocess.PIPE
  )
  try:
    assert os.read(process.stderr.fileno(), 100) == b"50%"  # the command still waits on stdin
    assert process.poll() is None
    process.stdin.close()
    assert process.stderr.read() == b"\r100%\n"
  finally:
    process.kill()
    process.wait()


def test_progress_counts_in_place_on_a_terminal_and_says_the_end_elsewhere():
  shown = io.StringIO()
  progress = console.Progress("Preparing", 200, stream=shown, tty=True)
  progress.update(100)
  progress.finish("done")
  assert shown.getvalue() == "Preparing...\rPreparing: 50%\rPreparing: done\n"
  shown = io.StringIO()
  progress = console.Progress("Preparing", 200, stream=shown, tty=False)
  progress.update(100)
  progress.finish("done")
  assert shown.getvalue() == "Preparing...\nPreparing: done\n"


@pytest.mark.slow  # a whole default command; the filter's lines: the tests above
def test_a_default_run_prints_no_line_that_looks_like_an_error(tmp_path):
  # The synthetic digits' kmnist-train, int8 (the converter's fully_quantize) and float (LiteRT's
  # XNNPACK line) exports, on this machine without a GPU (cuInit's failure).
  # Half the synthetic small run: one execution of 20 steps, two quantized files.
  result = synthetic_cli.run(
    *synthetic_cli.SMALL_RUN, "--steps=20", "--tflite=float,int8", cwd=tmp_path
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stderr == ""
  assert "| kmnist_int8.tflite | " in result.stdout
  assert not re.search(
    r"^([EFW]\d{4} |INFO: |fully_quantize|WARNING: |Traceback)", result.stdout, re.M
  )
