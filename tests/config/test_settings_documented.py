"""Every environment variable the settings read is in the README's one configuration table,
and every variable the table names is read somewhere: a new setting without its row (or a row
left behind by a removed setting) fails here.

The variables are found by parsing the sources (no settings are imported): calls of
config/settings.py's env_str / env_int / env_bool, os.environ.get / os.environ[...] /
os.getenv, and embedded.use_embedded, each with the variable's name as a literal.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTINGS = REPO_ROOT / "config" / "settings.py"
# Read at start by the processes `make run` and a deployment start, outside settings.py.
OTHER_READERS = [
    REPO_ROOT / "config" / "gunicorn.py",  # bind address, processes, threads
    REPO_ROOT / "config" / "embedded.py",  # the embedded Postgres's shared_buffers
    REPO_ROOT / "gallery" / "management" / "commands" / "seed_demo.py",  # the demo password
]
README = REPO_ROOT / "README.md"
TABLE_HEADING = "## Configuration (environment variables)"
# The helpers in settings.py that read a variable by a name given to them.
ENV_HELPERS = {"env_str", "env_int", "env_bool", "use_embedded"}
VARIABLE = re.compile(r"`([A-Z][A-Z0-9_]*[A-Z0-9])`")


def _is_environ(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def _env_name(node: ast.AST) -> tuple[bool, str | None] | None:
    """(literal?, name) when `node` reads the environment; None when it does not."""
    argument: ast.expr | None = None
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        reads = name in ENV_HELPERS or (
            isinstance(func, ast.Attribute)
            and (
                (func.attr == "get" and _is_environ(func.value))
                or (func.attr == "getenv" and isinstance(func.value, ast.Name))
            )
        )
        if not reads:
            return None
        argument = node.args[0] if node.args else None
    elif isinstance(node, ast.Subscript) and _is_environ(node.value):
        argument = node.slice
    else:
        return None
    if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
        return True, argument.value
    return False, None


def env_reads(path: Path) -> tuple[set[str], list[int]]:
    """The variable names `path` reads, and the lines of reads by a computed name outside
    a function (a helper's own body reads by its parameter: that is the helper, not a read)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inside_functions = {
        id(node)
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef)
        for node in ast.walk(function)
    }
    names, computed = set(), []
    for node in ast.walk(tree):
        found = _env_name(node)
        if found is None:
            continue
        literal, name = found
        if literal and name:
            names.add(name)
        elif id(node) not in inside_functions:
            computed.append(node.lineno)
    return names, computed


def table_variables(text: str) -> set[str]:
    """The variables named in the first column of the configuration table."""
    section = text.split(TABLE_HEADING, 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(VARIABLE.findall(line.split("|")[1]))
    return names


def test_the_parser_finds_each_kind_of_read(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\n"
        'A = env_int("A_INT", 1, minimum=0)\n'
        'B = os.environ.get("B_GET", "")\n'
        'C = os.environ["C_ITEM"]\n'
        'D = os.getenv("D_GETENV")\n'
        'E = embedded.use_embedded("E_URL")\n'
        'F = env_str("F_" + "COMPUTED", "")\n'
        "def env_str(name, default):\n"
        "    return os.environ.get(name, default)\n"
    )
    names, computed = env_reads(sample)
    assert names == {"A_INT", "B_GET", "C_ITEM", "D_GETENV", "E_URL"}
    assert computed == [7]


def test_settings_read_every_variable_by_its_literal_name() -> None:
    _names, computed = env_reads(SETTINGS)
    assert computed == [], f"config/settings.py reads a computed variable name at lines {computed}"


def test_every_variable_read_is_in_the_configuration_table_and_nothing_else_is() -> None:
    settings_names, _ = env_reads(SETTINGS)
    read = set(settings_names)
    for path in OTHER_READERS:
        read |= env_reads(path)[0]
    documented = table_variables(README.read_text(encoding="utf-8"))
    assert len(settings_names) >= 60  # the parser still sees settings.py's reads
    assert sorted(settings_names - documented) == [], "read by config/settings.py, not in README"
    assert sorted(read - documented) == [], "read at start, missing from the README's table"
    assert sorted(documented - read) == [], "in the README's table, read nowhere"


def test_there_is_one_configuration_table() -> None:
    """The docs link to the README's table; none keeps a second list that could drift."""
    for doc in [*sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "ARCHITECTURE.md"]:
        rows = [
            line
            for line in doc.read_text(encoding="utf-8").splitlines()
            if re.match(r"\|\s*`(SEEDBANK|DJANGO)_[A-Z0-9_]+`", line)
        ]
        assert rows == [], f"{doc.name} has a table of settings: {rows[:2]}"


def test_the_readme_stays_short() -> None:
    """What it is, two commands, using it, configuration, deploying, where to read more; the
    details live in docs/ (benchmarks in docs/benchmarks.md, each with its date and machine)."""
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Two commands",
        "## Using Seedbank",
        TABLE_HEADING,
        "## Deploying",
        "## More documentation",
    ]
