"""The package's shape: no two parts of `engine` import each other, directly or around a longer cycle.

A part is a top-level package (`engine.trading`, `engine.sim`, ...) or a top-level module (`engine.auth`,
`engine.errors`, ...). Every import counts, at module level, inside functions or under TYPE_CHECKING: a cycle
anywhere means the two parts are one concept split in two places, or a concept living in the wrong one.
The root package (`engine/__init__.py`, the public surface re-exported lazily) and `engine/__main__.py`
are the entry points, not parts.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import engine

PACKAGE = Path(engine.__file__).resolve().parent  # the checkout's, or the installed wheel's
ENTRY_POINTS = {"__init__", "__main__"}


def _part(module: str) -> str | None:
    """The part of `engine` a dotted module name belongs to, if any."""
    names = module.split(".")
    if names[0] != "engine" or len(names) < 2 or names[1] in ENTRY_POINTS:
        return None
    head = names[1]
    if (PACKAGE / head).is_dir() or (PACKAGE / f"{head}.py").is_file():
        return head
    return None


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    names = list(relative.parts)
    if names[-1] == "__init__":
        names.pop()
    return ".".join(names)


def _imported(path: Path) -> set[str]:
    """Every module `path` imports, absolute, wherever in the file the import is."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)  # `from engine import auth`
    return found


def import_graph() -> dict[str, dict[str, list[str]]]:
    """part -> the parts it imports -> the files that import them."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _part(_module_name(path))
        if source is None:
            continue
        for target in map(_part, _imported(path)):
            if target is not None and target != source:
                where = str(path.relative_to(PACKAGE.parent))
                if where not in graph[source][target]:
                    graph[source][target].append(where)
    return graph


def cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected components with more than one part (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(part: str) -> None:
        index[part] = low[part] = len(index)
        stack.append(part)
        on_stack.add(part)
        for target in graph.get(part, {}):
            if target not in index:
                visit(target)
                low[part] = min(low[part], low[target])
            elif target in on_stack:
                low[part] = min(low[part], index[target])
        if low[part] == index[part]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == part:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for part in sorted(graph):
        if part not in index:
            visit(part)
    return found


def test_the_graph_sees_the_imports_it_must() -> None:
    graph = import_graph()
    assert "errors" in graph["auth"]  # a module-level import
    assert "worker" in graph["cli"]  # a function-level one: `engine worker` imports the worker when it runs
    assert "trading" in graph["worker"]


def test_no_two_parts_of_engine_import_each_other() -> None:
    graph = import_graph()
    found = cycles(graph)
    details = []
    for component in found:
        members = set(component)
        for source in component:
            for target, files in sorted(graph[source].items()):
                if target in members:
                    details.append(f"  {source} -> {target}: {', '.join(files)}")
    assert not found, "import cycles between parts of engine:\n" + "\n".join(details)


def test_a_cycle_is_found_when_there_is_one() -> None:
    graph = {"a": {"b": ["a.py"]}, "b": {"c": ["b.py"]}, "c": {"a": ["c.py"]}, "d": {"a": ["d.py"]}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_a_command_loads_only_what_it_runs(tmp_path: Path) -> None:
    """`engine keygen` through the real entry point: the trading stack, the REST client and the worker stay
    unloaded (the public names of `engine` are imported on first use, each command when it runs)."""
    script = (
        "import sys\n"
        "from engine.cli import main\n"
        "try:\n"
        f"    main(['keygen', '--out', {str(tmp_path / 'key.json')!r}])\n"
        "except SystemExit as stop:\n"
        "    assert stop.code == 0, stop.code\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=PACKAGE.parent
    )
    assert completed.returncode == 0, completed.stderr
    loaded = set(completed.stdout.split())
    assert "engine.cli.keygen" in loaded
    assert (tmp_path / "key.json").is_file()
    for heavy in ("engine.trading", "engine.rest", "engine.worker", "engine.risk", "engine.cli.sim"):
        assert heavy not in loaded, f"engine keygen imported {heavy}"


def test_the_trading_core_imports_no_venue() -> None:
    """engine/trading trades through `engine.venues.base.Venue`: it imports no venue's package (its client,
    wire types or WebSocket), neither the REST re-exports nor the Advanced Trade socket."""
    venue_packages = {
        path.name for path in (PACKAGE / "venues").iterdir() if path.is_dir() and path.name != "__pycache__"
    }
    assert {"advanced", "exchange"} <= venue_packages  # the scan below sees the packages it must
    found: list[str] = []
    for path in sorted((PACKAGE / "trading").rglob("*.py")):
        for module in sorted(_imported(path)):
            names = module.split(".")
            into_venue = names[:2] == ["engine", "venues"] and len(names) > 2 and names[2] in venue_packages
            if into_venue or names[:2] == ["engine", "rest"] or module.startswith("engine.marketdata.ws"):
                found.append(f"{path.relative_to(PACKAGE.parent)} imports {module}")
    assert not found, "\n".join(found)
