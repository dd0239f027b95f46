"""The house drawn from the imports: no arrow runs back up, no circle.

Every module of the four project packages is parsed with `ast` (never imported), and every import in
it counts, function-local ones included: an import that dodges a circle by hiding in a function is
still an arrow. The layers, top to bottom (README, "Architecture"):

    server (composition root) -> handlers (web) -> workers (pipeline) -> models (domain)
    -> models.foundation (imports nothing else of the project)

`make lint-imports` checks the layers with import-linter too (setup.cfg `[importlinter]`); this test
also forbids circles between modules, which a layers contract cannot see inside one layer.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("server", "handlers", "workers", "models")
FOUNDATION = "models.foundation"


def module_files():
    """{dotted module name: path} of every project module."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = module_files()


def is_package(module):
    return MODULES[module].name == "__init__.py"


def imported_modules(module):
    """The project modules `module` imports anywhere in its body, each with the line it does so on."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"), filename=str(MODULES[module]))
    here = module if is_package(module) else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _project_module(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                # `from package import module` imports the module; `from module import name` the module.
                if f"{base}.{alias.name}" in MODULES:
                    yield f"{base}.{alias.name}", node.lineno
                else:
                    yield from _project_module(base, node.lineno)


def _project_module(name, lineno):
    """The longest project module `name` names (a name imported from a module leads to the module)."""
    parts = name.split(".")
    while parts and ".".join(parts) not in MODULES:
        parts.pop()
    if parts:
        yield ".".join(parts), lineno


def layer(module):
    """0 the foundation, 1 the domain, 2 the pipeline, 3 the web, 4 the composition root."""
    if module == FOUNDATION or module.startswith(FOUNDATION + "."):
        return 0
    return {"models": 1, "workers": 2, "handlers": 3, "server": 4}[module.split(".")[0]]


def import_graph():
    graph = {module: {} for module in MODULES}
    for module in MODULES:
        for target, lineno in imported_modules(module):
            if target != module:
                graph[module].setdefault(target, lineno)
    return graph


def circles(graph):
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            advanced = False
            for target in targets:
                if target not in index:
                    index[target] = low[target] = counter[0]
                    counter[0] += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(graph[target])))
                    advanced = True
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def test_every_project_module_is_parsed():
    assert {"server.app", "handlers.base", "workers.runtime", "models.workflow", "models.foundation.clock"} <= set(
        MODULES
    )


def test_no_import_runs_back_up():
    upward = [
        f"{MODULES[module].relative_to(ROOT)}:{lineno} imports {target}"
        for module, targets in import_graph().items()
        for target, lineno in targets.items()
        if layer(target) > layer(module)
    ]
    assert upward == [], "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_the_foundation_imports_nothing_else_of_the_project():
    graph = import_graph()
    outside = [
        f"{module} imports {target}"
        for module in graph
        if layer(module) == 0
        for target in graph[module]
        if layer(target) != 0
    ]
    assert outside == []


def test_no_module_imports_itself_back_through_others():
    graph = import_graph()
    found = list(circles(graph))
    described = [" <-> ".join(sorted(component)) for component in found]
    assert found == [], "import circles:\n" + "\n".join(described)


def test_the_checker_sees_function_local_and_relative_imports():
    """The checker itself: a circle hidden in a function, through a relative import, is found."""
    graph = {"models.a": {"models.b": 3}, "models.b": {"models.a": 9}, "models.c": {"models.a": 1}}
    assert circles(graph) == [{"models.a", "models.b"}]
    edges = dict(imported_modules("workers.outbox"))
    assert "workers.runtime" in edges and "models.actions.listing" in edges
