"""The deploy files as tests read them: the Dockerfile's instructions (by stage) and the
manifests' objects."""

import json
import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def dockerfile(stage: str | None = None) -> dict[str, list]:
  """Instruction -> its arguments, one entry per occurrence (continuation lines joined), in the
  whole file or in one stage (`FROM ... AS <stage>` up to the next FROM)."""
  text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
  instructions, current = {}, None
  for line in text.splitlines():
    if line.strip() and not line.lstrip().startswith("#"):
      word, _, rest = line.strip().partition(" ")
      if word == "FROM":
        current = rest.split()[-1] if " AS " in rest else None
      if stage in (None, current):
        instructions.setdefault(word, []).append(rest.strip())
  return instructions


def exec_form(argument: str) -> list[str]:
  return json.loads(argument) if argument.startswith("[") else shlex.split(argument)


def manifests(folder: str = "kserve") -> dict:
  """(kind, name) -> the object, over deploy/<folder>/*.yaml."""
  documents = {}
  for path in sorted((ROOT / "deploy" / folder).glob("*.yaml")):
    for document in yaml.safe_load_all(path.read_text()):
      documents[(document["kind"], document["metadata"]["name"])] = document
  return documents
