"""kmnist-serve over https and gRPC over TLS, with a certificate made in the test by the guide's own
commands; and the flags' faults, one line each before TensorFlow loads."""

import ssl
import subprocess
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from test_serve_cli import run_cli

from benchmarks.serve_load import ServerProcess, http_json
from kmnist.predict.model_paths import reference_export
from kmnist.serve.web import tls
from kmnist.util.errors import KmnistError

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guides" / "kmnist-serve.md"


def guide_certificate_commands() -> str:
  """The kmnist-serve guide's commands for a certificate authority and a server certificate."""
  section = GUIDE.read_text().split("## Serving over https")[1].split("\n## ")[0]
  commands = section.split("```bash\n")[1].split("```")[0]
  return commands.split("kmnist-serve ")[0]  # all but serving


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> Path:
  """The guide's CA and server certificate, made in a directory of their own."""
  directory = tmp_path_factory.mktemp("tls")
  made = subprocess.run(
    ["bash", "-euc", guide_certificate_commands()],
    cwd=directory,
    capture_output=True,
    text=True,
    timeout=60,
  )
  assert made.returncode == 0, made.stderr
  return directory


def test_check_takes_a_certificate_with_its_key_or_neither(certificate, tmp_path):
  cert, key = str(certificate / "cert.pem"), str(certificate / "key.pem")
  assert tls.check(None, None) is None
  assert tls.check(cert, key) == (cert, key)
  (tmp_path / "garbage.pem").write_text("not a certificate\n")
  faults = [
    ((cert, None), "--ssl_certfile needs --ssl_keyfile: give the certificate and its private key"),
    ((None, key), "--ssl_keyfile needs --ssl_certfile"),
    (
      (cert, str(certificate / "ca.key")),
      "are not a PEM certificate and its unencrypted private key",
    ),
    ((str(tmp_path / "garbage.pem"), key), "are not a PEM certificate and its unencrypted"),
    ((str(tmp_path / "missing.pem"), key), "--ssl_certfile=" + str(tmp_path / "missing.pem")),
    ((cert, str(tmp_path)), f"--ssl_keyfile={tmp_path} is not a file; give a PEM file"),
  ]
  for (certfile, keyfile), message in faults:
    with pytest.raises(KmnistError) as fault:
      tls.check(certfile, keyfile)
    assert message in str(fault.value) and "\n" not in str(fault.value)


def test_a_bad_certificate_stops_the_command_before_tensorflow(certificate):
  result = run_cli(
    f"--ssl_certfile={certificate / 'cert.pem'}", f"--ssl_keyfile={certificate / 'ca.key'}"
  )
  assert result.returncode == 2 and "Traceback" not in result.stderr
  error, imported = [line for line in result.stderr.splitlines() if line.strip()]
  assert error.startswith("kmnist-serve: error: --ssl_certfile=") and "not a PEM" in error
  assert imported == "tensorflow imported: False"


@pytest.mark.slow  # a real server over TLS
def test_the_page_rest_and_grpc_over_tls(certificate, mnist_digits):
  trusting = ssl.create_default_context(cafile=str(certificate / "ca.pem"))
  flags = [f"--ssl_certfile={certificate / 'cert.pem'}", f"--ssl_keyfile={certificate / 'key.pem'}"]
  with ServerProcess(reference_export() / "saved_model", *flags, ssl_context=trusting) as server:
    assert server.url.startswith("https://127.0.0.1:")
    with urllib.request.urlopen(server.url + "/", context=trusting) as page:
      assert b"Draw a digit" in page.read()
    digit = mnist_digits.images[:1]
    status, reply = http_json(
      f"{server.url}/v1/models/kmnist:predict", {"instances": digit.tolist()}, context=trusting
    )
    assert status == 200 and reply["predictions"][0]["class_id"] == 7  # the test set's first
    with pytest.raises(OSError):  # not served in the clear beside it
      http_json(f"http://127.0.0.1:{server.http_port}/", timeout=5)
    credentials = grpc.ssl_channel_credentials((certificate / "ca.pem").read_bytes())
    with grpc.secure_channel(f"127.0.0.1:{server.grpc_port}", credentials) as channel:
      request = predict_pb2.PredictRequest()
      request.model_spec.name = "kmnist"
      request.inputs["image"].CopyFrom(tf.make_tensor_proto(digit))
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      response = stub.Predict(request, timeout=30)
    assert np.array_equal(tf.make_ndarray(response.outputs["class_id"]), [7])
    assert "https://127.0.0.1:" in server.log() and "(TLS)" in server.log()
