"""The shape of ``helpers/``: no import cycles, function-local imports included.

Function-local imports are how cycles hide (the module loads because the import runs
late), so the graph counts every ``import``/``from`` anywhere in a module's source.
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

from helpers.core.paths import PROJECT_ROOT

HELPERS = PROJECT_ROOT / "helpers"


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(root: Path = HELPERS) -> dict[str, set[str]]:
    """``{module: {helpers modules it imports anywhere in its source}}``."""
    files = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                # ``from helpers import lm`` imports the module (here the package) helpers.lm
                targets = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in files else stem for a in node.names]
            for t in targets:
                while t and t not in files:
                    t = t.rpartition(".")[0]
                if t and t != mod and t != "helpers":
                    graph[mod].add(t)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_finds_a_hidden_cycle(tmp_path):
    pkg = tmp_path / "helpers"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from helpers import b\n")
    (pkg / "b.py").write_text("def f():\n    from helpers.a import x\n")
    (pkg / "c.py").write_text("from . import a\n")
    graph = import_graph(pkg)
    assert graph["helpers.b"] == {"helpers.a"} and graph["helpers.c"] == {"helpers.a"}
    assert find_cycles(graph) == [["helpers.a", "helpers.b"]]


def test_helpers_have_no_import_cycle():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles in helpers/ (function-local imports count): " + "; ".join(
        " <-> ".join(c) for c in cycles
    )


#: the layers of ``helpers/``, bottom first: a module may import from its own layer or a lower one
LAYERS = ("core", "metrics", "data", "lm", "encoders", "analyses", "run", "report")


def layer_of(module: str) -> str:
    """``helpers.data.manifest`` → ``data``; a module outside every layer names itself (and fails the test)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else module


def upward_imports(graph: dict[str, set[str]], layers: tuple[str, ...] = LAYERS) -> list[str]:
    """Every import from a module into a higher layer, as ``"a -> b (layer -> layer)"``."""
    rank = {name: i for i, name in enumerate(layers)}
    out = []
    for mod, targets in sorted(graph.items()):
        if mod == "helpers":
            continue
        for t in sorted(targets):
            a, b = layer_of(mod), layer_of(t)
            if rank.get(b, len(layers)) > rank.get(a, -1):
                out.append(f"{mod} -> {t} ({a} -> {b})")
    return out


def test_every_module_lives_in_a_layer():
    outside = sorted(m for m in import_graph() if m != "helpers" and layer_of(m) not in LAYERS)
    assert not outside, f"modules outside the layers {LAYERS}: {outside} (move them into a sub-package)"


def test_imports_point_down_the_layers():
    upward = upward_imports(import_graph())
    assert not upward, "imports into a higher layer (move the code down, or the importer up): " + "; ".join(upward)


def test_the_layer_check_sees_an_upward_import(tmp_path):
    pkg = tmp_path / "helpers"
    for sub in ("core", "report"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "a.py").write_text("def f():\n    from helpers.report import b\n")
    (pkg / "report" / "b.py").write_text("from helpers.core.a import f\n")
    graph = import_graph(pkg)
    assert upward_imports(graph, ("core", "report")) == ["helpers.core.a -> helpers.report.b (core -> report)"]
    assert upward_imports({"helpers.report.b": {"helpers.core.a"}}, ("core", "report")) == []


def test_readme_module_table_matches_the_tree():
    readme = (PROJECT_ROOT / "README.md").read_text()
    design = readme[readme.index("## Design") :]
    listed = set(re.findall(r"^\| `([\w.]+)` \|", design, flags=re.M))
    present = {_module_name(p, HELPERS).removeprefix("helpers.") for p in HELPERS.rglob("*.py")} - {"helpers"}
    assert listed == present, (
        f"README lists {sorted(listed - present)} not in helpers/; misses {sorted(present - listed)}"
    )


def test_every_notebook_default_equals_the_default_profile():
    """A parameter declared in several notebooks has one default: the default profile's.

    ``default.yaml`` is what ``make reproduce`` runs; a notebook opened by hand in JupyterLab
    runs its own ``parameters`` cell, and the two must give the same run.
    """
    import papermill as pm
    import yaml

    from helpers.run.runner import PROFILES_DIR, numbered_notebooks

    profile = yaml.safe_load((PROFILES_DIR / "default.yaml").read_text())
    differ = []
    for nb in numbered_notebooks():
        for name, info in pm.inspect_notebook(str(nb)).items():
            if name not in profile:
                continue
            try:
                value = ast.literal_eval(info["default"])
            except (ValueError, SyntaxError):
                differ.append(f"{nb.name}: {name} = {info['default']} is not a literal")
                continue
            if value != profile[name]:
                differ.append(f"{nb.name}: {name} = {value!r}, default.yaml has {profile[name]!r}")
    assert not differ, "\n".join(differ)


#: functions allowed over :data:`MAX_FUNCTION_LINES` for now, with the reason; an entry that is no longer long fails the test
LONG_FUNCTIONS: dict[str, str] = {}
MAX_FUNCTION_LINES = 80
#: a module longer than this says in its docstring why it is one module (a line starting "One module because")
MAX_MODULE_LINES = 500
#: a function taking more parameters than this says why in its docstring (a line starting "Many parameters because")
MAX_PARAMETERS = 8


def _parameter_counts(root: Path = HELPERS):
    """``(dotted name, parameters, docstring)`` of every function and method under ``root`` (``self``/``cls`` not counted)."""
    for path in sorted(root.rglob("*.py")):
        mod = _module_name(path, root).removeprefix("helpers.")
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
                n = len(names) - (1 if names and names[0] in ("self", "cls") else 0)
                yield f"{mod}.{node.name}", n, ast.get_docstring(node) or ""


def test_long_parameter_lists_say_why():
    unexplained = [
        f"{name} ({n})"
        for name, n, doc in _parameter_counts()
        if n > MAX_PARAMETERS and not re.search(r"^Many parameters because", doc, flags=re.M)
    ]
    assert not unexplained, (
        f"functions over {MAX_PARAMETERS} parameters (group them into a settings object, or say "
        f"'Many parameters because ...' in the docstring): {unexplained}"
    )


def test_the_parameter_check_counts_methods_without_self(tmp_path):
    pkg = tmp_path / "helpers"
    pkg.mkdir()
    source = (
        'class C:\n    def f(self, a, *, b, c=1):\n        pass\n\n\ndef g(x):\n    """Many parameters because."""\n'
    )
    (pkg / "m.py").write_text(source)
    got = {name: (n, doc) for name, n, doc in _parameter_counts(pkg)}
    assert got == {"m.f": (3, ""), "m.g": (1, "Many parameters because.")}


#: modules allowed over :data:`MAX_MODULE_LINES` without a reason for now; an entry that is no longer long fails the test
LONG_MODULES: dict[str, str] = {}


def _functions(root: Path = HELPERS):
    """``(dotted name, lines)`` of every function and method under ``root`` (decorators and docstring included)."""
    for path in sorted(root.rglob("*.py")):
        mod = _module_name(path, root).removeprefix("helpers.")

        def walk(node: ast.AST, prefix: str):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    name = f"{prefix}.{child.name}"
                    if not isinstance(child, ast.ClassDef):
                        start = min([child.lineno] + [d.lineno for d in child.decorator_list])
                        yield name, child.end_lineno - start + 1
                    yield from walk(child, name)

        yield from walk(ast.parse(path.read_text(), str(path)), mod)


def test_no_function_is_longer_than_a_screen():
    long = {name: n for name, n in _functions() if n > MAX_FUNCTION_LINES}
    unexplained = {k: v for k, v in long.items() if k not in LONG_FUNCTIONS}
    assert not unexplained, f"functions over {MAX_FUNCTION_LINES} lines (split them): {unexplained}"
    stale = sorted(set(LONG_FUNCTIONS) - set(long))
    assert not stale, f"no longer long, drop from LONG_FUNCTIONS: {stale}"


def test_long_modules_say_why_they_are_one_module():
    missing = []
    for path in sorted(HELPERS.rglob("*.py")):
        n = len(path.read_text().splitlines())
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        name = str(path.relative_to(HELPERS))
        if n > MAX_MODULE_LINES and not re.search(r"^One module because", doc, flags=re.M) and name not in LONG_MODULES:
            missing.append(f"{name} ({n} lines)")
        if name in LONG_MODULES and n <= MAX_MODULE_LINES:
            missing.append(f"{name} is no longer long: drop it from LONG_MODULES")
    assert not missing, (
        f"modules over {MAX_MODULE_LINES} lines whose docstring does not say 'One module because ...': "
        + ", ".join(missing)
    )


def test_the_size_checks_see_a_long_function(tmp_path):
    pkg = tmp_path / "helpers"
    pkg.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (pkg / "m.py").write_text(f"class C:\n    @staticmethod\n    def f():\n{textwrap.indent(body, '    ')}\n")
    assert dict(_functions(pkg)) == {"m.C.f": MAX_FUNCTION_LINES + 2}


#: the notebooks' code cells, on average, read as one step each (the parameters cell is not counted)
MAX_MEAN_CELL_LINES = 8
MAX_CELL_LINES = 20


def test_notebook_code_cells_are_short_steps():
    """Logic lives in helpers: a code cell calls a step or two and shows the result.

    Counted: non-blank lines of every code cell but the ``parameters`` one, over all numbered notebooks.
    """
    import nbformat

    from helpers.run.runner import numbered_notebooks

    sizes, long = [], []
    for nb_path in numbered_notebooks():
        for i, cell in enumerate(nbformat.read(nb_path, as_version=4).cells):
            if cell.cell_type != "code" or "parameters" in cell.metadata.get("tags", []):
                continue
            n = sum(1 for line in cell.source.splitlines() if line.strip())
            sizes.append(n)
            if n > MAX_CELL_LINES:
                long.append(f"{nb_path.name} cell {i}: {n} lines")
    assert sizes and sum(sizes) / len(sizes) <= MAX_MEAN_CELL_LINES, (
        f"mean {sum(sizes) / len(sizes):.1f} lines per code cell"
    )
    assert not long, f"cells over {MAX_CELL_LINES} lines: {long}"


def _github_slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_readme_contents_link_every_section():
    readme = (PROJECT_ROOT / "README.md").read_text()
    sections = re.findall(r"^## (.+)$", readme, flags=re.M)
    contents = readme[readme.index("**Contents**") : readme.index("\n## ")]
    links = re.findall(r"\[([^\]]+)\]\(#([^)]+)\)", contents)
    slugs = {_github_slug(h) for h in re.findall(r"^#{2,3} (.+)$", readme, flags=re.M)}
    assert [a for _, a in links if a not in slugs] == [], "contents links to no heading"
    assert {_github_slug(s) for s in sections} <= {a for _, a in links}, "a section is missing from the contents"
    assert _github_slug("Did it reproduce? `make check-reference`") == "did-it-reproduce-make-check-reference"


def test_papermill_reads_every_parameter_a_notebook_declares():
    """A line papermill cannot parse (e.g. a ';' in its comment) drops that parameter without an error of its own."""
    import nbformat
    import papermill as pm

    from helpers.run.runner import numbered_notebooks

    lost = {}
    for path in numbered_notebooks():
        cell = next(c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
        assigned = {
            t.id
            for node in ast.parse(cell.source).body
            if isinstance(node, ast.Assign)
            for t in node.targets
            if isinstance(t, ast.Name)
        }
        missing = assigned - set(pm.inspect_notebook(str(path)))
        if missing:
            lost[path.name] = sorted(missing)
    assert not lost, f"papermill does not see these parameters (check their lines): {lost}"
