"""The documentation site builds offline in MkDocs' strict mode, and no generated page is stale: the
flag references match the flags' definitions, the benchmark pages and README's blocks match the
benchmarks' JSON (docs/generate.py)."""

import subprocess
import sys

from doc_names import ROOT

from docs import generate


def test_no_generated_page_is_stale():
  stale = [str(path.relative_to(ROOT)) for path in generate.stale()]
  assert not stale, f"stale: {stale}; run python -m docs.generate"


def test_a_changed_flag_makes_its_reference_page_stale(tmp_path, monkeypatch):
  page = generate.flag_page("kmnist-predict", "kmnist.cli.predict")
  assert "| `--top_k` | `3` | How many of the most probable digits to show. |" in page
  from kmnist.cli import predict

  real = predict.define_flags

  def with_another_default(fv):
    real(fv)
    fv["top_k"].default = 5  # what editing the definition would do

  monkeypatch.setattr(predict, "define_flags", with_another_default)
  assert "| `--top_k` | `5` |" in generate.flag_page("kmnist-predict", "kmnist.cli.predict")


def test_the_site_builds_in_strict_mode(tmp_path):
  built = subprocess.run(
    [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
    env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
  )
  assert built.returncode == 0, built.stderr[-3000:]
  assert (tmp_path / "site" / "guides" / "training" / "index.html").is_file()
  assert (tmp_path / "site" / "reference" / "kmnist-train" / "index.html").is_file()
