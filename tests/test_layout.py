"""The package's layout holds: no import circles, and no module imports from a stage above its own.

The stages, lowest first: the shared base (errors, version, resources), model, hardware, project,
tools, then the entry points (cli, api).  Imports only needed for type names (under
`if TYPE_CHECKING:`) are not run, so they are not counted.
"""
import ast
from pathlib import Path


PACKAGE = Path(__file__).resolve().parent.parent / "hlsgen"
FLOORS = {"model": 1, "hardware": 2, "project": 3, "tools": 4}
ENTRY = 5


def module_name(path: Path) -> str:
    parts = ("hlsgen",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def floor(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return 0                                   # the package itself: only its version
    if parts[1] in FLOORS:
        return FLOORS[parts[1]]
    return ENTRY if parts[1] in ("cli", "api", "__main__") else 0


def runtime_imports(path: Path, known: set) -> set:
    """The hlsgen modules a file imports when it runs (type-checking-only imports left out)."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
               and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING"
               for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "hlsgen":
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "hlsgen")
    return found


def import_graph() -> dict:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: runtime_imports(path, set(paths)) & set(paths) for name, path in paths.items()}


def test_the_graph_is_read():
    graph = import_graph()
    assert len(graph) > 25 and graph["hlsgen.project.build"], "the reader found no imports"


def find_circle(graph: dict) -> list | None:
    """One import circle of the graph as a path of module names, or None."""
    state: dict = {}

    def visit(module, path):
        state[module] = "open"
        for dep in sorted(graph[module]):
            if state.get(dep) == "open":
                return path[path.index(dep):] + [dep]
            if dep not in state and (circle := visit(dep, path + [dep])):
                return circle
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (circle := visit(module, [module])):
            return circle
    return None


def test_no_import_circles():
    circle = find_circle(import_graph())
    assert circle is None, "import circle: " + " -> ".join(circle or [])


def test_a_circle_is_found():
    """The search sees a circle where there is one (so the test above cannot pass vacuously)."""
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set()}) is None


def test_no_upward_imports():
    upward = [f"{m} -> {d}" for m, deps in import_graph().items() for d in deps
              if d != "hlsgen" and floor(d) > floor(m)]
    assert not upward, "imports from a higher stage:\n" + "\n".join(sorted(upward))
