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
