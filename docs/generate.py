"""The documentation's generated pages and README's generated blocks, made from the code and from
the benchmarks' JSON, so that none can go stale (tests/test_docs_site.py fails when one differs).

    python -m docs.generate                                      # rewrite them all
    python -m docs.generate --publish runs/default_command.json  # a benchmark's output, published
    python -m docs.generate --check                              # exit 1 naming what is stale

Reference: each command's flags, from its own `define_flags` on a fresh FlagValues.
Benchmarks: docs/benchmarks/<name>.json is a benchmark's output as it wrote it (with its stamp:
date, commit, processor, command); docs/benchmarks/<name>.md shows it through the benchmark's own
table function. README's blocks between `<!-- generated: NAME -->` and `<!-- end: NAME -->` come
from the same JSON, and so do the guides' (the scaling-out guide's table).
"""

import argparse
import importlib
import json
import re
import shutil
import sys
import tomllib
from pathlib import Path

from absl import flags

from benchmarks import models, stamp
from kmnist.serve.operations import metrics

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BENCHMARKS = DOCS / "benchmarks"

# Each benchmark page: the name of its JSON (and of the page) -> (title, the module whose table()
# renders it, the command that remakes the JSON in runs/, what it measures).
PAGES = {
  "models": (
    "The models",
    "benchmarks.models",
    "python -m benchmarks --models=softmax,mlp,cnn,cnn+augment --seeds=0,1,2",
    "Each model's default run on three seeds beside keras-io's `mnist_convnet` recipe, in the same "
    "process on the same machine: test accuracy, training time, when each first reaches 99.0 % and "
    "99.2 %, accuracy after equal training times, the TFLite files, each model's whole command.",
  ),
  "default_command": (
    "The default command",
    "benchmarks.command",
    "python -m benchmarks",
    "`kmnist-train` as README runs it, turn about with the tutorial's own TF1 program; where its "
    "seconds go; kmnist's training loop against NumPy and TF1 on the same batches; each export.",
  ),
  "serve_soak": (
    "kmnist-serve's soak",
    "benchmarks.serve_soak",
    "python -m benchmarks.serve --parts=soak --out=runs/serve_soak.json",
    "Ten minutes of REST, gRPC, Open Inference and page requests plus hostile bodies against "
    "kmnist-serve on 127.0.0.1 while versions roll in from kmnist-train, the model config file "
    "changes and the server is stopped with SIGTERM and started again: good requests that failed "
    "(0 is the requirement), latency, the probes, RSS, log lines (see the guide "
    "[kmnist-serve and the page](../guides/kmnist-serve.md)).",
  ),
  "distribute": (
    "Scaling out",
    "benchmarks.distribute",
    "python -m benchmarks.distribute",
    "The tutorial's model on the real MNIST on one device, on 2 replicas of one CPU, on 2 workers "
    "started by hand and on 2 workers of a local Ray, each held to the one-device model by its "
    "exported logits (see the guide [Scaling out](../guides/scaling-out.md)).",
  ),
}


def command_modules() -> dict:
  """{command: module} of pyproject's [project.scripts]."""
  scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
  return {name: target.split(":")[0] for name, target in scripts.items()}


def flag_page(command: str, module_name: str) -> str:
  """A command's flags as a table, from its define_flags."""
  module = importlib.import_module(module_name)
  fv = flags.FlagValues()
  module.define_flags(fv)
  summary = (module.__doc__ or "").strip().splitlines()[0]
  rows = [
    f"# {command}",
    "",
    f"{summary.split(': ', 1)[-1]}",
    "",
    f"Generated from the flag definitions of `{module_name}` by `python -m docs.generate`; every "
    "flag also goes in a file given with `--flagfile=FILE`, one `--flag=value` a line.",
    "",
    "| flag | default | meaning |",
    "| --- | --- | --- |",
  ]
  for name in sorted(fv):
    flag = fv[name]
    meaning = flag.help.replace("|", "\\|").replace("\n", " ")
    choices = getattr(flag.parser, "enum_values", None)
    if choices:
      meaning += f" One of: {', '.join(f'`{c}`' for c in choices)}."
    rows.append(f"| `--{name}` | {default_text(flag)} | {meaning} |")
  return "\n".join(rows) + "\n"


def default_text(flag) -> str:
  value = flag.default
  if value is None:
    return "—"
  if isinstance(value, bool):
    return "`true`" if value else "`false`"
  if isinstance(value, list | tuple):
    return f"`{','.join(map(str, value))}`"
  return f"`{value}`"


def benchmark_page(name: str, figures: dict) -> str:
  """A benchmark's JSON as its page: what it measures, its stamp, its tables, how to remake it."""
  title, module, command, about = PAGES[name]
  table = importlib.import_module(module).table(figures)
  picture = f"![{title}: the benchmark's picture]({name}.png)\n\n" * picture_of(name).is_file()
  return (
    f"# {title}\n\n{about}\n\n{stamp.line(figures['stamp'])}\n\n{picture}{table}\n\n"
    f"Remake: `{command}`, then `python -m docs.generate --publish runs/{name}.json`.\n"
  )


def picture_of(name: str) -> Path:
  """The picture a benchmark drew beside its JSON (published with it), if any."""
  return BENCHMARKS / f"{name}.png"


def benchmark_figures() -> dict:
  """{name: figures} of every published benchmark."""
  return {name: json.loads((BENCHMARKS / f"{name}.json").read_text()) for name in published()}


def published() -> list:
  return [name for name in PAGES if (BENCHMARKS / f"{name}.json").is_file()]


# README's results table: one row per model, from the models benchmark.
README_MODELS = ("softmax", "mlp", "cnn")


def readme_blocks(figures: dict) -> dict:
  """README's generated blocks: {name: text}."""
  blocks = {}
  if "default_command" in figures:
    output = figures["default_command"]["end_to_end"]["stdout"].rstrip("\n")
    blocks["output"] = f"```text\n$ kmnist-train\n{output}\n```"
  if "models" in figures:
    blocks["results"] = results_table(figures["models"])
  return blocks


def results_table(figures: dict) -> str:
  """Accuracy, time and phone file of each of README_MODELS, stamped as measured."""
  grouped, commands = models.by_model(figures), figures.get("commands", {})
  rows = [
    "| `--model` | test accuracy, mean of seeds | training | whole command | int8 TFLite file |",
    "| --- | ---: | ---: | ---: | ---: |",
  ]
  for name in README_MODELS:
    runs = grouped[name]
    accuracy = sum(r["test_accuracy"] for r in runs) / len(runs)
    training = sum(r["training_seconds"] for r in runs) / len(runs)
    command = f"{commands[name]:.0f} s" if name in commands else "—"
    size = runs[0]["tflite"]["int8"]["size_bytes"]
    rows.append(
      f"| `{name}` | {100 * accuracy:.2f} % | {training:.0f} s | {command} | {size / 1000:.0f} KB |"
    )
  s = figures["stamp"]
  rows.append(
    f"\nSeeds {', '.join(str(x) for x in sorted({r['seed'] for r in figures['runs']}))}, "
    f"{s['processor']} ({s['cores']} cores), {s['date'][:10]}: `{s['command']}`; every figure "
    "with its machine and command is on the [benchmark pages](docs/benchmarks/index.md)."
  )
  return "\n".join(rows)


def guide_blocks(figures: dict) -> dict:
  """The guides' generated blocks: {guide: {name: text}}, a benchmark's table where the guide
  discusses it."""
  blocks = {}
  if "distribute" in figures:
    data = figures["distribute"]
    table = importlib.import_module("benchmarks.distribute").table(data)
    blocks[DOCS / "guides" / "scaling-out.md"] = {
      "distribute": f"{stamp.line(data['stamp'])}\n\n{table}\n\nRemake: "
      "`python -m benchmarks.distribute` ([the benchmark's page](../benchmarks/distribute.md))."
    }
  return blocks


def with_blocks(text: str, blocks: dict) -> str:
  """`text` with each generated block's content replaced."""
  for name, content in blocks.items():
    pattern = re.compile(rf"(<!-- generated: {name} -->\n)(?:.*?\n)?(<!-- end: {name} -->)", re.S)
    text = pattern.sub(lambda m, c=content: f"{m.group(1)}{c}\n{m.group(2)}", text)
  return text


def pages() -> dict:
  """{path: the text (or bytes) it must hold} for every generated file."""
  wanted = {
    DOCS / "reference" / f"{command}.md": flag_page(command, module)
    for command, module in command_modules().items()
  }
  wanted[DOCS / "reference" / "serve-metrics.md"] = metrics.markdown()
  figures = benchmark_figures()
  for name, data in figures.items():
    wanted[BENCHMARKS / f"{name}.md"] = benchmark_page(name, data)
  readme = ROOT / "README.md"
  wanted[readme] = with_blocks(readme.read_text(), readme_blocks(figures))
  for guide, blocks in guide_blocks(figures).items():
    wanted[guide] = with_blocks(guide.read_text(), blocks)
  # The reference export's picture, shown by the training guide (the site holds only docs/).
  wanted[DOCS / "assets" / "weights.png"] = (
    ROOT / "kmnist" / "reference" / "weights.png"
  ).read_bytes()
  return wanted


def differs(path: Path, content) -> bool:
  if not path.is_file():
    return True
  return (path.read_bytes() if isinstance(content, bytes) else path.read_text()) != content


def stale() -> list:
  """The generated files that differ from what the code and the JSON make."""
  return [path for path, content in pages().items() if differs(path, content)]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--check", action="store_true", help="exit 1 naming what is stale")
  parser.add_argument("--publish", nargs="*", default=[], help="benchmark JSON files to publish")
  args = parser.parse_args(argv)
  if args.check:
    names = [str(p.relative_to(ROOT)) for p in stale()]
    if names:
      print(f"stale: {', '.join(names)}; run python -m docs.generate", file=sys.stderr)
    return 1 if names else 0
  for path in map(Path, args.publish):
    name = path.stem
    if name not in PAGES:
      print(f"{path}: not a benchmark with a page ({', '.join(PAGES)})", file=sys.stderr)
      return 2
    shutil.copyfile(path, BENCHMARKS / f"{name}.json")
    if path.with_suffix(".png").is_file():
      shutil.copyfile(path.with_suffix(".png"), picture_of(name))
  for path, content in pages().items():
    if differs(path, content):
      path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
      print(f"wrote {path.relative_to(ROOT)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
