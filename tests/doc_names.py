"""What the docs name, and where each kind of name is looked up (tests/test_docs.py checks them).

The docs are README.md, BUILD_NOTES.md, exported/README.md, the site's pages (docs/**/*.md), the
Dockerfile and deploy/**/*.yaml.
Names come from the markdown's inline code spans and the lines of its shell (and unlabelled) code
blocks, from the Dockerfile's instructions, from the manifests' container args, and from the
comments of the last two. The tree is read as text and ASTs: nothing of kmnist is imported here.
"""

import ast
import re
import shlex
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# The site's pages (docs/), README, the design document and the export folder's note.
MARKDOWN = [
  "README.md",
  "BUILD_NOTES.md",
  "exported/README.md",
  *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md")),
]
# Folders of the repository a path in the docs may start with (exported/ holds its README).
REPO_DIRS = {"kmnist", "tests", "benchmarks", "docs", "deploy", ".ci", "exported"}
# What runs write, named in the docs as examples: not in the tree.
RUN_OUTPUTS = ("runs/", "exported/saved_model", "exported/tflite")
# The source a snake_case name in the docs must occur in (the page's JS too), and pyproject's
# dependencies and settings. This file's own test is left out: it names what does not exist.
SOURCE_DIRS = ["kmnist", "tests", "benchmarks"]
SOURCE_SUFFIXES = {".py", ".js", ".html", ".css"}
# Bare file names of these kinds must be a file of the tree ...
FILE_SUFFIXES = {".py", ".md", ".toml", ".yaml", ".yml", ".txt", ".js", ".html", ".css"}
# ... and these are what runs write (kmnist.json, saved_model.pb), not Python names.
OUTPUT_SUFFIXES = {".json", ".png", ".pb", ".tflite", ".npz", ".npy", ".index", ".gz", ".tmp"}
SHELL_OPERATORS = {"&&", "||", "|", ";"}


def config_docs() -> list[str]:
  return ["Dockerfile", *(str(p.relative_to(ROOT)) for p in sorted(ROOT.glob("deploy/**/*.yaml")))]


def expand_braces(token: str) -> list[str]:
  """`a_{b,c}_d` -> [`a_b_d`, `a_c_d`], as the shell expands it."""
  match = re.search(r"\{([^{}]*,[^{}]*)\}", token)
  if not match:
    return [token]
  return [
    expanded
    for option in match.group(1).split(",")
    for expanded in expand_braces(token[: match.start()] + option + token[match.end() :])
  ]


def words(text: str) -> list[str]:
  """Shell words of a line (plain whitespace splitting where quotes do not pair, as in prose)."""
  try:
    return shlex.split(text, comments=False)
  except ValueError:
    return text.split()


def simple_commands(text: str) -> list[list[str]]:
  """The line's words, split at the shell's && || | ; (each part is one command)."""
  parts = [[]]
  for word in words(text):
    if word in SHELL_OPERATORS:
      parts.append([])
    else:
      parts[-1].append(word)
  return [p for p in parts if p]


def markdown_snippets(name: str) -> list[tuple[int, str]]:
  """(line number, text) of each inline code span and each line of shell or unlabelled code
  blocks (continuation lines joined); of other blocks (clients' code) only the imports."""
  snippets, block, language, pending, heredoc = [], None, None, "", None
  for number, line in enumerate((ROOT / name).read_text().splitlines(), 1):
    fence = re.match(r"\s*```(\w*)", line)
    if fence:
      block, language = (None, None) if block is not None else (number, fence.group(1))
      continue
    if block is None:
      snippets += [(number, span) for span in re.findall(r"`([^`]+)`", line)]
    elif heredoc is not None and line.strip() == heredoc:
      heredoc = None  # the end of a program a shell line fed in (`python - <<'PY'`)
    elif language in ("", "bash", "sh", "shell") and heredoc is None:
      heredoc = (re.findall(r"<<-?\s*'?(\w+)'?", line) or [None])[0]
      pending += line.rstrip("\\") + " "
      if not line.endswith("\\"):
        snippets.append((number, re.sub(r"\s+#\s.*$", "", pending)))  # comments are prose
        pending = ""
    elif re.match(r"\s*(from|import)\s", line):  # what a client's code imports from kmnist
      snippets.append((number, line))
  return snippets


def markdown_links(name: str) -> list[tuple[int, str]]:
  """(line number, target) of each relative link or picture, and each #anchor."""
  links = []
  for number, line in enumerate((ROOT / name).read_text().splitlines(), 1):
    for target in re.findall(r"\]\(([^)\s]+)\)", line):
      if not re.match(r"[a-z]+:", target):
        links.append((number, target))
  return links


def headings(name: str) -> set[str]:
  """GitHub's anchors of the file's headings."""
  text = re.sub(r"```.*?```", "", (ROOT / name).read_text(), flags=re.S)
  titles = re.findall(r"^#+\s+(.*)$", text, flags=re.M)
  return {re.sub(r"[^\w\- ]", "", t.lower()).replace(" ", "-") for t in titles}


def titles(name: str) -> set[str]:
  """The file's headings as written (code spans' backticks left out), and each without what it
  adds in brackets ("Models" for "Models (`--model=mlp`, ...)")."""
  text = re.sub(r"```.*?```", "", (ROOT / name).read_text(), flags=re.S)
  found = {t.replace("`", "").strip() for t in re.findall(r"^#+\s+(.*)$", text, flags=re.M)}
  return found | {re.sub(r"\s*\(.*\)$", "", t) for t in found}


QUOTED = r'"[^"]+"'
SECTION_REFERENCES = [
  # README ("Title"), `BUILD_NOTES.md` ("A", "B"), (README.md, "Title", and "Other")
  rf"(?<!\w)(?P<file>README|BUILD_NOTES)(?:\.md)?`?,?\s*\(?(?P<titles>{QUOTED}(?:,?\s*(?:and\s+)?{QUOTED})*)",
  rf"[Ss]ee (?P<titles>{QUOTED})",  # in the same file
  rf"(?P<titles>{QUOTED}) below",
]


def section_references(name: str, text: str) -> list[tuple[int, str, str]]:
  """(line number, file, title) of each section of README.md or BUILD_NOTES.md that `text` (of
  the file `name`) refers to by its title, in quotes."""
  found = []
  for number, line in enumerate(text.splitlines(), 1):
    for pattern in SECTION_REFERENCES:
      for match in re.finditer(pattern, line):
        file = f"{match.groupdict().get('file') or Path(name).stem}.md"
        found += [(number, file, title) for title in re.findall(r'"([^"]+)"', match["titles"])]
  return found


def dockerfile_commands() -> tuple[list[tuple[int, list[str]]], list[tuple[int, str]]]:
  """([(line, words)] of COPY's sources and of ENTRYPOINT + CMD, [(line, text)] of comments)."""
  commands, comments, entrypoint, cmd = [], [], None, None
  lines = (ROOT / "Dockerfile").read_text().splitlines()
  joined, start = "", 0
  for number, line in enumerate(lines, 1):
    if line.lstrip().startswith("#"):
      if comments and comments[-1][1].endswith("\\"):  # a command continued in the comment
        comments[-1] = (comments[-1][0], comments[-1][1][:-1] + line.lstrip()[1:])
      else:
        comments.append((number, line.lstrip()[1:]))
      continue
    joined, start = joined + line.rstrip("\\") + " ", start or number
    if line.endswith("\\"):
      continue
    instruction, _, rest = joined.strip().partition(" ")
    rest = rest.strip()
    arguments = yaml.safe_load(rest) if rest.startswith("[") else words(rest)
    if instruction == "COPY":
      commands.append((start, ["COPY", *arguments[:-1]]))
    elif instruction == "ENTRYPOINT":
      entrypoint = (start, arguments)
    elif instruction == "CMD" and not joined.lstrip().startswith("HEALTHCHECK"):
      cmd = arguments
    joined, start = "", 0
  if entrypoint:
    commands.append((entrypoint[0], [*entrypoint[1], *(cmd or [])]))
  return commands, comments


def manifest_commands(name: str) -> tuple[list[tuple[int, list[str]]], list[tuple[int, str]]]:
  """([(line, words)] of each container's command and args, and of a RayJob's entrypoint,
  [(line, text)] of comments). A container without a command runs the image's entrypoint, and the
  image is the one the Dockerfile builds by default, so that entrypoint is the Dockerfile's."""
  text = (ROOT / name).read_text()
  (entrypoint,) = [words[:1] for _, words in dockerfile_commands()[0] if words[0] != "COPY"]
  lines = [n for n, line in enumerate(text.splitlines(), 1) if re.match(r"\s*args:", line)]
  documents = list(yaml.safe_load_all(text))
  containers = [c for document in documents for c in _containers(document)]
  commands = [
    (n, [*c.get("command", entrypoint), *c["args"]]) for n, c in zip(lines, containers, strict=True)
  ]
  for document in documents:
    if document["kind"] == "RayJob":  # the command Ray runs on the cluster's head
      (line,) = [n for n, t in enumerate(text.splitlines(), 1) if re.match(r"\s*entrypoint:", t)]
      commands.append((line, words(document["spec"]["entrypoint"])))
  comments = [
    (n, t.split("#", 1)[1]) for n, t in enumerate(text.splitlines(), 1) if t.lstrip()[:1] == "#"
  ]
  comments += [
    (n, t.split(" # ", 1)[1])
    for n, t in enumerate(text.splitlines(), 1)
    if " # " in t and t.lstrip()[:1] != "#"
  ]
  return commands, comments


def _containers(node):
  if isinstance(node, dict):
    if "image" in node and "args" in node:
      yield node
    for value in node.values():
      yield from _containers(value)
  elif isinstance(node, list):
    for value in node:
      yield from _containers(value)


def tree_files() -> list[Path]:
  """The repository's files (top level and its folders), without caches and run outputs."""
  files = [p for p in ROOT.iterdir() if p.is_file()]
  for folder in sorted(REPO_DIRS):
    files += [p for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
  return [f for f in files if not str(f.relative_to(ROOT)).startswith(RUN_OUTPUTS)]


def source_text() -> str:
  """The source (and pyproject.toml) as one text, for names that must occur in it."""
  paths = [ROOT / "pyproject.toml"] + [
    p
    for folder in SOURCE_DIRS
    for p in sorted((ROOT / folder).rglob("*"))
    if p.suffix in SOURCE_SUFFIXES and p.name != "test_docs.py"
  ]
  return "\n".join(p.read_text() for p in paths)


def python_modules() -> dict[str, Path]:
  """Dotted name -> file, for kmnist and the benchmarks (a package is its __init__.py)."""
  found = {}
  for top in ("kmnist", "benchmarks"):
    for path in sorted((ROOT / top).rglob("*.py")):
      parts = path.relative_to(ROOT).with_suffix("").parts
      found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
  return found


def defined_names(tree: ast.Module) -> tuple[set[str], dict[str, set[str]]]:
  """A module's top-level names (defs, classes, assignments, imports), and each class's members
  (methods, class attributes, dataclass fields, and self.<name> assigned in its methods)."""
  names, classes = set(), {}
  for node in _top_level(tree.body):
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
      names.add(node.name)
    elif isinstance(node, ast.Import | ast.ImportFrom):
      names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    elif isinstance(node, ast.Assign | ast.AnnAssign):
      for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
        names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    if isinstance(node, ast.ClassDef):
      members = set()
      for item in ast.walk(node):
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
          members.add(item.name)
        elif (
          isinstance(item, ast.Attribute)
          and isinstance(item.ctx, ast.Store)
          and isinstance(item.value, ast.Name)
          and item.value.id in ("self", "cls")
        ):
          members.add(item.attr)
      for item in node.body:
        if isinstance(item, ast.Assign | ast.AnnAssign):
          for target in item.targets if isinstance(item, ast.Assign) else [item.target]:
            members |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
      classes[node.name] = members
  return names, classes


def _top_level(body):
  for node in body:
    yield node
    if isinstance(node, ast.If | ast.Try | ast.With):
      for block in ("body", "orelse", "finalbody", "handlers"):
        yield from _top_level(getattr(node, block, []))
    elif isinstance(node, ast.ExceptHandler):
      yield from _top_level(node.body)


def test_functions() -> dict[str, dict[str, set[str]]]:
  """tests/ file name -> {its test functions and classes: their pytest marks (and the module's)}."""
  found = {}
  for path in sorted((ROOT / "tests").glob("test_*.py")):
    tree = ast.parse(path.read_text())
    module_marks = {
      mark
      for node in tree.body
      if isinstance(node, ast.Assign)
      and any(getattr(t, "id", "") == "pytestmark" for t in node.targets)
      for mark in _marks(node.value)
    }
    found[path.name] = {
      n.name: module_marks | {m for d in n.decorator_list for m in _marks(d)}
      for n in ast.walk(tree)
      if isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name.startswith(("test", "Test"))
    }
  return found


def _marks(node) -> set[str]:
  """The names of the `pytest.mark.<name>` in an expression."""
  return {
    n.attr
    for n in ast.walk(node)
    if isinstance(n, ast.Attribute) and getattr(n.value, "attr", None) == "mark"
  }


def absl_flag_definitions(path: Path) -> dict[str, bool]:
  """Flags a module defines with flags.DEFINE_<kind>("name", ...) -> whether boolean (how the
  benchmarks define theirs, on absl's global FLAGS when imported: read, not imported)."""
  found = {}
  for node in ast.walk(ast.parse(path.read_text())):
    if (
      isinstance(node, ast.Call)
      and isinstance(node.func, ast.Attribute)
      and node.func.attr.startswith("DEFINE_")
      and node.args
      and isinstance(node.args[0], ast.Constant)
    ):
      found[node.args[0].value] = node.func.attr in ("DEFINE_boolean", "DEFINE_bool")
  return found
