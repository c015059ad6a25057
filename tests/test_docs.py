"""The docs name only what exists: every file, test, module, function, flag, command and section
that README.md, BUILD_NOTES.md, exported/README.md, the Dockerfile and deploy/ name is looked up in
the tree (tests/doc_names.py finds the names), and their pytest commands run as written. Fast: the
commands' flags come from their own define_flags (light modules, no TensorFlow); the rest is read
as text and ASTs."""

import ast
import dataclasses
import functools
import importlib
import importlib.util
import itertools
import re
import shlex
import subprocess
import sys
from pathlib import Path

import doc_names
import pytest
from absl import app, flags
from absl import logging as absl_logging
from doc_names import PYPROJECT, ROOT

# snake_case names the docs discuss that occur nowhere in kmnist's source: other libraries', each
# with why the docs name it (none now).
ELSEWHERE: dict[str, str] = {}
# Placeholders the docs write as flags.
PLACEHOLDER_FLAGS = {"flag": "README's `--flag=value`: the form of a flagfile's lines"}
# Programs other than kmnist's that the docs run: their flags are theirs.
OTHER_PROGRAMS = {
  "docker", "kubectl", "curl", "pip", "rm", "tensorboard", "saved_model_cli", "ruff", "apt-get",
  "mkdocs", "ray",
}  # fmt: skip
IDENTIFIER = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
TEST_ID = re.compile(r"(?:tests/)?(test_\w+\.py)::(\w+)(?:::(\w+))?(?:\[.*\])?")


@dataclasses.dataclass(frozen=True)
class Tree:
  basenames: set  # names of the repository's files
  modules: dict  # dotted name -> (top-level names, {class: members})
  classes: dict  # class name -> [members of each class of that name]
  source_words: set  # every word of the source
  tests: dict  # tests/ file name -> {test name: its marks}
  commands: dict  # command (script or `python -m` module) -> {flag: boolean?}
  builtins: set  # absl's own flags


def command_flags() -> dict:
  """Each command's flags, by the script's name and by its module's (`python -m`)."""
  commands = {}
  for script, target in PYPROJECT["project"]["scripts"].items():
    module = target.split(":")[0]
    fv = flags.FlagValues()
    importlib.import_module(module).define_flags(fv)
    commands[script] = commands[module] = {name: fv[name].boolean for name in fv}
  for module, path in (("benchmarks", "__main__.py"), ("benchmarks.serve", "serve.py")):
    commands[module] = doc_names.absl_flag_definitions(ROOT / "benchmarks" / path)
  return commands


def absl_builtins() -> set:
  """Flags absl's app and logging define for every command; --flagfile and --undefok are read by
  FlagValues itself."""
  assert absl_logging  # imported for the flags it defines
  app.define_help_flags()
  found = {"flagfile", "undefok"}
  for module, defined in flags.FLAGS.flags_by_module_dict().items():
    if module.startswith("absl."):
      found |= {name for f in defined for name in (f.name, f.short_name) if name}
  return found


@functools.cache
def tree() -> Tree:
  """Where names are looked up, gathered once."""
  modules, classes = {}, {}
  for name, path in doc_names.python_modules().items():
    modules[name] = doc_names.defined_names(ast.parse(path.read_text()))
    for cls, members in modules[name][1].items():
      classes.setdefault(cls, []).append(members)
  return Tree(
    basenames={p.name for p in doc_names.tree_files()},
    modules=modules,
    classes=classes,
    source_words=set(re.findall(r"\w+", doc_names.source_text())),
    tests=doc_names.test_functions(),
    commands=command_flags(),
    builtins=absl_builtins(),
  )


def resolve(parts: list) -> bool | None:
  """Whether a dotted name is kmnist's (or a benchmark's) and defined; None if not ours.

  `kmnist.a.b` and `benchmarks.a` are looked up from the top; `images.to_mnist` from any module
  named `images`; `KmnistModel.stop` in any class of that name.
  """
  t = tree()
  if parts[0] in ("kmnist", "benchmarks"):
    return _resolve_in(parts[0], parts[1:])
  candidates = [m for m in t.modules if m.rsplit(".", 1)[-1] == parts[0]]
  if candidates:
    return any(_resolve_in(m, parts[1:]) for m in candidates)
  if parts[0] in t.classes:
    return any(parts[1] in members for members in t.classes[parts[0]])
  return None


def _resolve_in(module: str, rest: list) -> bool:
  if not rest:
    return True
  if f"{module}.{rest[0]}" in tree().modules:
    return _resolve_in(f"{module}.{rest[0]}", rest[1:])
  names, classes = tree().modules[module]
  if rest[0] not in names:
    return False
  return len(rest) == 1 or rest[0] not in classes or rest[1] in classes[rest[0]]


ALLOWED = set()  # the allowlists' entries the docs needed


def occurs(name: str) -> bool:
  """Whether the source (or the allowlist) has this name, as a whole word."""
  if name in tree().source_words:
    return True
  ALLOWED.add(name)
  return name in ELSEWHERE


def check_path(token: str) -> list:
  """A repository path exists (a glob matches a file); placeholders and run outputs pass."""
  if token.startswith("./"):
    token = token[2:]
  if token.startswith(doc_names.RUN_OUTPUTS) or token.split("/")[0] not in doc_names.REPO_DIRS:
    return []
  if re.search(r"[<{]|\.\.\.", token):
    return []  # a placeholder
  if "*" in token:
    return [] if list(ROOT.glob(token)) else [("file", f"{token} matches no file")]
  return [] if (ROOT / token).exists() else [("file", f"{token} does not exist")]


def check_test_id(match) -> list:
  """tests/test_x.py::test_y[...] (or ::TestClass::test_y) names a test of that file."""
  file, name, inner = match.groups()
  defined = tree().tests.get(file)
  if defined is None:
    return [("test", f"tests/{file} does not exist")]
  missing = [n for n in (name, inner) if n and n not in defined]
  return [("test", f"tests/{file} has no test {n}") for n in missing]


def check_identifier(token: str) -> list:
  """A Python name: kmnist's resolve; a test's name is a test; other snake_case names occur."""
  parts = token.split(".")
  if len(parts) > 1 and f".{parts[-1]}" in doc_names.FILE_SUFFIXES | doc_names.OUTPUT_SUFFIXES:
    return []  # a file name (kmnist.json, saved_model.pb)
  if len(parts) > 1:
    resolved = resolve(parts)
    if resolved is not None:
      return [] if resolved else [("python", f"{token} is not defined in kmnist")]
  problems = []
  for part in parts:
    if part.startswith("test_") and len(parts) == 1:
      if not any(part in names for names in tree().tests.values()):
        problems.append(("test", f"no test is named {part}"))
    elif "_" in part.strip("_") and part.lower() == part and not occurs(part):
      problems.append(("name", f"{part} occurs nowhere in {', '.join(doc_names.SOURCE_DIRS)}"))
  return problems


def check_flag(token: str, command) -> list:
  """--name[=value] (or --noname) is a flag of `command`, of any kmnist command if None, or
  absl's; a command of another program ("other") has its own."""
  t = tree()
  if command == "other":
    return []
  known = (
    t.commands[command] if command else {k: v for c in t.commands.values() for k, v in c.items()}
  )
  problems = []
  for name in doc_names.expand_braces(token.lstrip("-").split("=")[0]):
    negated = name.startswith("no") and known.get(name[2:]) is True
    ALLOWED.update({name} & set(PLACEHOLDER_FLAGS))
    if not (name in known or name in t.builtins or negated or name in PLACEHOLDER_FLAGS):
      problems.append(("flag", f"--{name} is not a flag of {command or 'any kmnist command'}"))
  return problems


def check_command(words: list, prose: bool = False) -> list:
  """One simple command's words: the program, then each word, flags belonging to the command
  written before them (a kmnist-* word anywhere starts that command: `docker run ... kmnist-serve`
  runs it as the image's entrypoint)."""
  t, problems, command = tree(), [], None
  words = list(words)
  while words and re.fullmatch(r"[A-Z][A-Z0-9_]*=.*", words[0]):
    variable, value = words.pop(0).split("=", 1)
    if variable.startswith("KMNIST_") and not occurs(variable):
      problems.append(("name", f"{variable} occurs nowhere in the source"))
    problems += check_path(value)
  if words[:2] in (["python", "-m"], ["python3", "-m"]) and len(words) > 2:
    module, words = words[2], words[3:]
    if importlib.util.find_spec(module) is None:
      problems.append(("command", f"python -m {module}: no such module"))
    command = module if module in t.commands else "other"
  elif words and words[0] in OTHER_PROGRAMS | {"python", "python3"}:
    command = "other"
  skip_paths = words[:1] == ["rm"]
  for word in (e for w in words for e in doc_names.expand_braces(w)):
    token = word.strip("([\"'").rstrip(")],.;:\"'")
    if words[0] == "pip" and re.fullmatch(r"\.\[[\w,-]+\]", word):
      extras = set(word[2:-1].split(",")) - set(PYPROJECT["project"]["optional-dependencies"])
      problems += [("command", f"pip extra [{e}] is not in pyproject") for e in sorted(extras)]
    elif re.fullmatch(r"kmnist-[a-z-]+", token):
      if token not in PYPROJECT["project"]["scripts"]:
        problems.append(("command", f"{token} is not a command of pyproject's [project.scripts]"))
      command = token if token in t.commands else command
    elif token.startswith("--") or (token == "-v" and command != "other"):
      problems += check_flag(token, command) + check_path(token.partition("=")[2])
    elif TEST_ID.fullmatch(token):
      problems += check_test_id(TEST_ID.fullmatch(token))
    elif "/" in token:
      problems += [] if skip_paths else check_path(token)
    elif re.fullmatch(r"[\w.-]+", token) and Path(token).suffix in doc_names.FILE_SUFFIXES:
      if token not in t.basenames:
        problems.append(("file", f"{token} is no file of the repository"))
    elif not prose and "*" not in token:  # a pattern (evaluation_*_vs_iterations) names no one
      for name in IDENTIFIER.findall(re.sub(r"\(.*?\)", "()", token.split("=")[0])):
        problems += check_identifier(name)
  return problems


def check_import(text: str) -> list | None:
  """`from kmnist.x import y` / `import kmnist.x`: each name resolves; None if not an import."""
  match = re.fullmatch(r"\s*(?:from\s+([\w.]+)\s+)?import\s+([\w., ]+?)(?:\s+as\s+\w+)?\s*", text)
  if match is None:
    return None
  module, names = match.groups()
  dotted = [f"{module}.{n.strip()}" if module else n.strip() for n in names.split(",")]
  ours = [d for d in dotted if d.split(".")[0] in ("kmnist", "benchmarks")]
  return [("python", f"{d} is not defined in kmnist") for d in ours if not resolve(d.split("."))]


def check_text(text: str, prose: bool = False) -> list:
  """(kind, problem) for each name in a code span or code line; prose (the Dockerfile's and the
  manifests' comments) is checked for files, paths, commands and flags only."""
  imported = None if prose else check_import(text)
  if imported is not None:
    return imported
  return [p for words in doc_names.simple_commands(text) for p in check_command(words, prose)]


def check_sections(name: str, text: str) -> list:
  """[(line, title, problems)] for the sections of README or BUILD_NOTES that `text` names."""
  return [
    (line, title, [("section", f"{file} has no section {title!r}")])
    for line, file, title in doc_names.section_references(name, text)
    if not (ROOT / file).exists() or title not in doc_names.titles(file)
  ]


@functools.cache
def doc_problems() -> dict:
  """kind -> ["<doc>:<line>: `<snippet>`: <problem>"] over every doc."""
  found = {}

  def add(where, snippet, problems):
    for kind, problem in problems:
      found.setdefault(kind, []).append(f"{where}: `{snippet}`: {problem}")

  for name in doc_names.MARKDOWN:
    for line, snippet in doc_names.markdown_snippets(name):
      add(f"{name}:{line}", snippet, check_text(snippet))
    anchors = doc_names.headings(name)
    for line, target in doc_names.markdown_links(name):
      path, _, anchor = target.partition("#")
      missing = (path and not (ROOT / name).parent.joinpath(path).exists()) or (
        anchor and not path and anchor not in anchors
      )
      add(f"{name}:{line}", target, [("file", "the link leads nowhere")] if missing else [])
  for name in doc_names.MARKDOWN + doc_names.config_docs():
    for where, title, problems in check_sections(name, (ROOT / name).read_text()):
      add(f"{name}:{where}", title, problems)
  for name in doc_names.config_docs():
    read = doc_names.dockerfile_commands if name == "Dockerfile" else doc_names.manifest_commands
    commands, comments = read() if name == "Dockerfile" else read(name)
    for line, words in commands:
      if words[0] == "COPY":
        missing = [w for w in words[1:] if not (ROOT / w).exists()]
        add(f"{name}:{line}", " ".join(words), [("file", f"{w} does not exist") for w in missing])
      else:
        add(f"{name}:{line}", " ".join(words), check_command(words))
    for line, text in comments:
      add(f"{name}:{line}", text.strip(), check_text(text, prose=True))
  return found


KINDS = ["file", "test", "python", "name", "flag", "command", "section"]


@pytest.mark.parametrize("kind", KINDS)
def test_the_docs_name_only_what_exists(kind):
  problems = doc_problems().get(kind, [])
  assert not problems, "\n".join(problems)


def test_every_problem_has_a_kind_tested_above():
  assert set(doc_problems()) <= set(KINDS)


def test_the_allowlists_hold_only_what_the_docs_need():
  """Each entry is a name the docs give that the source does not have."""
  doc_problems()
  assert set(ELSEWHERE) | set(PLACEHOLDER_FLAGS) <= ALLOWED


def pytest_commands() -> list:
  """(where, words after `python -m pytest`) of each pytest command the docs give."""
  found = []
  for name in doc_names.MARKDOWN:
    for line, snippet in doc_names.markdown_snippets(name):
      for words in doc_names.simple_commands(snippet):
        words = [w for w in words if not re.fullmatch(r"[A-Z_]+=.*", w)]
        if words[:3] == ["python", "-m", "pytest"]:
          found.append((f"{name}:{line}", [w for w in words[3:] if w != "..."]))
  return found


def option_value(words: list, option: str) -> str | None:
  return next((value for flag, value in itertools.pairwise(words) if flag == option), None)


def test_the_pytest_commands_select_tests_that_exist_and_show_what_they_print():
  """-k names tests of the files given (slow ones if -m slow); -s shows prints only without
  xdist's workers, so beside addopts' -n it needs -n 0."""
  distributed = "-n" in shlex.split(PYPROJECT["tool"]["pytest"]["ini_options"]["addopts"])
  problems = []
  for where, words in pytest_commands():
    keyword, mark = option_value(words, "-k"), option_value(words, "-m")
    files = [Path(w).name for w in words if w.startswith("tests/") and "*" not in w]
    if keyword and files:
      tests = {n: marks for f in files for n, marks in tree().tests.get(f, {}).items()}
      chosen = [
        n
        for n, marks in tests.items()
        if keyword.lower() in n.lower() and (mark != "slow" or "slow" in marks)
      ]
      if not chosen:
        problems.append(f"{where}: -k {keyword} -m {mark} selects no test of {files}")
    if "-s" in words and distributed and option_value(words, "-n") != "0":
      problems.append(f"{where}: -s shows nothing under pyproject's -n 2 (xdist): add -n 0")
  assert not problems, "\n".join(problems)


def parse_pytest_options(options, empty_dir) -> subprocess.Popen:
  """pytest parsing `options` with pyproject's addopts, collecting nothing (exit code 5)."""
  return subprocess.Popen(
    [sys.executable, "-m", "pytest", *options, "--co", "-q", "--noconftest",
     "-p", "no:cacheprovider", "-c", "pyproject.toml", "--rootdir", ".", str(empty_dir)],
    cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
  )  # fmt: skip


def test_the_pytest_commands_of_the_docs_parse_with_the_projects_options(tmp_path):
  """All their options in one run (so `-p no:xdist` fails beside addopts' `-n 2`); if that
  fails, each command alone, to name the ones that do."""
  commands = sorted(
    {tuple(w for w in words if not re.search(r"/|\.py$", w)) for _, words in pytest_commands()}
  )
  union = parse_pytest_options([o for options in commands for o in options], tmp_path)
  output = union.communicate()[0]
  if union.returncode == pytest.ExitCode.NO_TESTS_COLLECTED:
    return
  failed = {}
  for options in commands:
    run = parse_pytest_options(options, tmp_path)
    if run.wait() != pytest.ExitCode.NO_TESTS_COLLECTED:
      failed[" ".join(options)] = run.communicate()[0].strip().splitlines()[-3:]
  assert failed, output
  pytest.fail(f"pytest refuses the docs' `python -m pytest {next(iter(failed))}`: {failed}")


@pytest.mark.parametrize(
  "text, prose, kind",
  [
    ("Run it as TF Serving's image is run (SERVE_README.md):", True, "file"),
    ("visualize_cli.read_dense_weights", False, "name"),
    ("loopback_allowed", False, "name"),
    ("kmnist.serve.repository.versions.no_such_function", False, "python"),
    ("images.no_such_function", False, "python"),
    ("KmnistModel.no_such_method", False, "python"),
    ("tests/test_layout.py::test_no_such_test", False, "test"),
    ("test_no_such_test", False, "test"),
    ("kmnist/no_such_module.py", False, "file"),
    ("no_such_module.py", False, "file"),
    ("kmnist-serve --no_such_flag", False, "flag"),
    ("kmnist-train --grpc_port=8500", False, "flag"),  # kmnist-serve's, not kmnist-train's
    ("python -m benchmarks --users=16", False, "flag"),  # benchmarks.serve's
    ("kmnist-no-such-command", False, "command"),
    ("python -m kmnist.no_such_module", False, "command"),
    ('pip install -e ".[no_such_extra]"', False, "command"),
  ],
)
def test_the_checks_find_names_that_do_not_exist(text, prose, kind):
  assert kind in {k for k, _ in check_text(text, prose)}


def test_the_checks_find_sections_that_do_not_exist():
  text = '# on K8s (README.md, "On Kubernetes"), see "Tests", `BUILD_NOTES.md` ("Invariants")'
  assert [title for _, title, _ in check_sections("BUILD_NOTES.md", text)] == [
    "On Kubernetes",
    "Tests",
  ]


@pytest.mark.parametrize(
  "text",
  [
    "kmnist.json",
    "kmnist-train --novisualize --helpfull -v 0 --flagfile=FILE",
    "python -m benchmarks.serve --users=16",
    "kmnist.cli.train.define_flags(flag_values)",
    "tests/test_serve_*.py",
    "rm -rf kmnist/reference/checkpoints",
  ],
)
def test_the_checks_pass_names_that_exist(text):
  assert check_text(text) == []
