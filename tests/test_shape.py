"""The scripts keep CleanRL's shape: at most 1.5 times the length of their CleanRL counterpart, every
``# LaGO`` fence closed, the training loop at the top indentation, and no DDP in single-process scripts."""

import ast

import pytest
from script_helpers import REPO

# Lines of CleanRL's files at vwxyzjn/cleanrl@fe8d8a03 (`git show HEAD:cleanrl/<file> | wc -l`).
COUNTERPARTS = {
    "ppo_lago_clevr.py": ("ppo.py", 312),
    "ppo_lago_metaworld.py": ("ppo_continuous_action.py", 353),
    "sac_lago.py": ("sac_continuous_action.py", 324),
}


@pytest.mark.parametrize("script", sorted(COUNTERPARTS))
def test_script_is_at_most_one_and_a_half_times_its_cleanrl_counterpart(script):
    lines = (REPO / "cleanrl_lago" / script).read_text().count("\n")
    counterpart, cleanrl_lines = COUNTERPARTS[script]
    assert lines <= 1.5 * cleanrl_lines, f"{script}: {lines} lines, {counterpart}: {cleanrl_lines}"


@pytest.mark.parametrize("script", [*sorted(COUNTERPARTS), "ppo_lago_metaworld_multigpu.py"])
def test_lago_fences_are_balanced_and_the_loop_is_not_wrapped(script):
    source = (REPO / "cleanrl_lago" / script).read_text()
    depth = 0
    for number, line in enumerate(source.splitlines(), 1):
        marker = line.strip()
        if marker.startswith("# LaGO"):
            assert depth == 0, f"{script}:{number}: a LaGO fence opens inside another"
            depth = 1
        elif marker == "# end LaGO":
            assert depth == 1, f"{script}:{number}: '# end LaGO' without an opening fence"
            depth = 0
    assert depth == 0, f"{script}: a LaGO fence is never closed"
    main = next(
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)
    )
    assert any(isinstance(node, ast.For) for node in main.body), (
        "the training loop sits at the top of __main__"
    )
    assert not any(isinstance(node, ast.Try) for node in main.body), "no try around the loop"


@pytest.mark.parametrize("script", sorted(COUNTERPARTS))
def test_single_process_scripts_carry_no_data_parallel_code(script):
    source = (REPO / "cleanrl_lago" / script).read_text()
    assert "torch.distributed" not in source and "# DDP" not in source


def module_imports(package: str) -> dict[str, set[str]]:
    """{module: the modules of the project it imports, anywhere in its body} for every module of ``package``
    (``priors``, ``cleanrl_lago``; ``benchmark``'s files import each other by bare name)."""
    graph = {}
    for path in sorted((REPO / package).rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        graph[name] = imported
    return graph


def test_priors_files_stay_small_and_the_layers_import_downward_only():
    """priors/ is a small library: no module over 400 lines. benchmark/ sits above cleanrl_lago/, which sits
    above priors/: priors imports neither, cleanrl_lago never imports benchmark."""
    for path in (REPO / "priors").glob("*.py"):
        assert path.read_text().count("\n") <= 400, f"{path.name} is over 400 lines"
    for module, imported in module_imports("priors").items():
        assert not any(i.split(".")[0] in ("cleanrl_lago", "benchmark") for i in imported), module
    benchmark_modules = {p.stem for p in (REPO / "benchmark").glob("*.py")}
    for module, imported in module_imports("cleanrl_lago").items():
        assert not any(i.split(".")[0] in benchmark_modules | {"benchmark"} for i in imported), module


@pytest.mark.parametrize("package", ["priors", "cleanrl_lago"])
def test_no_import_circles(package):
    graph = module_imports(package)
    # A module's own package (its __init__, which imports every module) is not an edge.
    edges = {
        m: {i for i in imported if i in graph and i not in (m, package) and not m.startswith(i + ".")}
        for m, imported in graph.items()
    }
    state: dict[str, int] = {}

    def visit(module, path):
        state[module] = 1
        for nxt in sorted(edges[module]):
            assert state.get(nxt) != 1, "import circle: " + " -> ".join([*path, nxt])
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
