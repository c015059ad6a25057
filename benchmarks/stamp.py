"""What a benchmark's figures were measured on and how: written into its JSON as `stamp`.

    {"date", "commit", "processor", "cores", "command", "load_average"}

The documentation's benchmark pages (docs/generate.py) print it above the tables, so a figure always
comes with the machine, the code and the command that made it.
"""

import datetime
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def processor() -> str:
  """The processor's model name (/proc/cpuinfo on Linux)."""
  cpuinfo = Path("/proc/cpuinfo")
  if cpuinfo.is_file():
    for line in cpuinfo.read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  return platform.processor() or "unknown processor"


def commit() -> str:
  """The commit the code was at, with `+changes` when the tree differed from it."""

  def git(*args):
    return subprocess.run(
      ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()

  head = git("rev-parse", "--short=12", "HEAD") or "unknown"
  changed = git("status", "--porcelain", "--untracked-files=no")
  return f"{head}+changes" if changed else head


def stamp(argv=None) -> dict:
  """The stamp for a benchmark started now with `argv` (default: this process's command line)."""
  argv = sys.argv if argv is None else argv
  spec = getattr(sys.modules.get("__main__"), "__spec__", None)  # None unless run with -m
  program = ["python", "-m", spec.name.removesuffix(".__main__")] if spec else ["python", argv[0]]
  command = [*program, *argv[1:]]
  return {
    "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    "commit": commit(),
    "processor": processor(),
    "cores": os.cpu_count(),
    "command": shlex.join(command),
    "load_average": [round(x, 2) for x in os.getloadavg()],
  }


def line(s: dict) -> str:
  """One Markdown line saying all of it."""
  return (
    f"Measured {s['date']} at commit `{s['commit']}` on {s['processor']} ({s['cores']} cores; "
    f"load average {s['load_average'][0]:.2f} at the start) by `{s['command']}`."
  )
