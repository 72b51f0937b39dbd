"""The tree shows the architecture (docs/architecture.md#layout): chalicelib's packages are
layers, each importing only from the ones below it; no module imports another in a cycle;
package `__init__` files only describe; `app.py` stays a table of contents; the clients a
user runs never need the embedded stack."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# chalicelib's packages, lowest first: each may import from itself and those before it.
LAYERS = ["imaging", "platform", "images", "webhooks", "resize", "api", "service"]
# thumbgen modules a user of a deployed stage imports: none of them loads thumbgen/local/.
CLIENT_MODULES = ["thumbgen.client", "thumbgen.upload", "thumbgen.receiver", "thumbgen.retry",
                  "thumbgen.progress", "thumbgen.render", "thumbgen.rendition_arg", "thumbgen.token"]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(top: str) -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((REPO / top).rglob("*.py"))}


def _imports(path: Path, prefixes: tuple[str, ...], *, top_level_only: bool = False) -> set[str]:
    """Modules named by the file's imports (also those inside functions, unless
    top_level_only), as module names: `from chalicelib.api import paging` names
    chalicelib.api.paging."""
    found = set()
    tree = ast.parse(path.read_text())
    for node in (tree.body if top_level_only else ast.walk(tree)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {name for name in found if name.startswith(prefixes)}


def _graph(top: str, *, top_level_only: bool = False) -> dict[str, set[str]]:
    modules = _modules(top)
    return {name: {m for m in _imports(path, (top,), top_level_only=top_level_only)
                   if m in modules and m != name}
            for name, path in modules.items()}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_chalicelib_is_grouped_into_the_layer_packages():
    loose = [p.name for p in (REPO / "chalicelib").glob("*.py") if p.name not in ("__init__.py", "service.py")]
    assert loose == [], "every chalicelib module belongs to one of the packages"
    packages = sorted(p.name for p in (REPO / "chalicelib").iterdir() if (p / "__init__.py").exists())
    assert packages == sorted(LAYERS[:-1])


def test_each_package_imports_only_from_the_layers_below_it():
    upward = [f"{module} -> {target}"
              for module, targets in _graph("chalicelib").items() if _layer(module) is not None
              for target in targets
              if _layer(target) is not None and _layer(target) > _layer(module)]
    assert upward == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return groups


@pytest.mark.parametrize("top", ["chalicelib", "thumbgen"])
def test_no_import_cycles(top):
    assert _cycles(_graph(top)) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_lambda_code_never_imports_local_tooling():
    reached = {f"{name} -> {m}" for name, path in _modules("chalicelib").items()
               for m in _imports(path, ("thumbgen", "tests", "bench", "moto", "infra"))}
    reached |= {f"app -> {m}" for m in _imports(REPO / "app.py", ("thumbgen", "tests", "bench", "moto", "infra"))}
    assert reached == set()


def test_clients_never_need_the_embedded_stack():
    """Importing a client loads none of the embedded stack (moto, the local API); only a
    command run without --api-url reaches it, from inside the function that needs it."""
    modules = _modules("thumbgen")
    graph = _graph("thumbgen", top_level_only=True)
    for client in CLIENT_MODULES:
        assert client in modules
        seen, todo = set(), [client]
        while todo:
            for m in graph[todo.pop()] - seen:
                seen.add(m)
                todo.append(m)
        assert not {m for m in seen if m.startswith("thumbgen.local")}, client


@pytest.mark.parametrize("init", sorted(str(p.relative_to(REPO)) for top in ("chalicelib", "thumbgen")
                                        for p in (REPO / top).rglob("__init__.py")))
def test_package_inits_only_describe(init):
    body = ast.parse((REPO / init).read_text()).body
    assert len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    assert len(body[0].value.value.split()) >= 15, "a paragraph saying what the package owns"


def test_app_is_a_table_of_contents():
    """One decorated handler per way in, each a few lines; helpers only check the caller."""
    tree = ast.parse((REPO / "app.py").read_text())
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    handlers = [f for f in functions if f.decorator_list]
    assert len(handlers) >= 15
    too_long = {f.name: f.end_lineno - f.lineno + 1 for f in functions if f.end_lineno - f.lineno + 1 > 20}
    assert too_long == {}
    assert not [n for n in tree.body if isinstance(n, ast.ClassDef)], "classes belong in chalicelib"
