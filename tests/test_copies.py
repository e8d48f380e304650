"""Copies kept honest, as Transformers keeps its ``# Copied from`` comments (``utils/check_copies.py``).

A variant script (``ppo_lago_metaworld_multigpu.py``) is its single-process script plus the lines of its
own change, marked ``# DDP``. Each top-level statement it copies is preceded by a marker,
``# Copied from <script>.py: <name>``, where ``<name>`` is a function or class, ``imports`` (the
script's run of imports) or ``__main__`` (the ``if __name__ == "__main__":`` block). The marked
statement must be, line for line, the statement of that name in ``<script>.py``, except for the
variant's own lines: those with a trailing ``# DDP`` comment and those in a ``# DDP`` ... ``# end DDP``
fence. Those may add lines or replace lines of the original; they may not drop one. Every function
and class the two files share must carry a marker.
"""

import ast
import difflib
import io
import re
import tokenize
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "cleanrl_lago"
MARKER = re.compile(r"^# Copied from (?P<source>[\w.]+\.py): (?P<name>[\w.]+)$")
OWN = "DDP"  # the tag of the variants' own lines
VARIANTS = {"ppo_lago_metaworld_multigpu.py": "ppo_lago_metaworld.py"}


def statements(source: str) -> dict[str, tuple[int, int]]:
    """The 1-based line span (first, last) of each top-level function and class (decorators included), of
    the run of imports (``imports``) and of the ``if __name__ == "__main__":`` block (``__main__``)."""
    spans, imports = {}, []
    for node in ast.parse(source).body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            spans[node.name] = (first, node.end_lineno)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append((first, node.end_lineno))
        elif isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'":
            spans["__main__"] = (first, node.end_lineno)
    if imports:  # one run at the top of a script, as ruff sorts them
        spans["imports"] = (imports[0][0], imports[-1][1])
    return spans


def own_lines(source: str) -> set[int]:
    """The 1-based numbers of the lines marked as the variant's own (``# DDP``)."""
    own, fence = set(), None
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        row, text = token.start[0], token.string
        full_line = not token.line[: token.start[1]].strip()
        if full_line and re.match(rf"# end {OWN}\b", text):
            own.update(range(fence, row + 1))
            fence = None
        elif full_line and re.match(rf"# {OWN}\b", text):
            fence = row
        elif re.match(rf"# {OWN}\b", text):
            own.add(row)
    assert fence is None, f"a '# {OWN}' fence opened at line {fence} is never closed"
    return own


def markers(source: str) -> dict[str, tuple[str, int]]:
    """{name: (source script, 1-based line of the marker)} for every ``# Copied from`` line."""
    found = {}
    for row, line in enumerate(source.splitlines(), start=1):
        match = MARKER.match(line.strip())
        if match:
            assert match["name"] not in found, f"two markers for {match['name']}"
            found[match["name"]] = (match["source"], row)
        else:
            assert not line.strip().startswith("# Copied from"), f"line {row}: malformed marker {line!r}"
    return found


def copy_differences(original: list[str], copy: list[str], own: list[bool]) -> list[str]:
    """The lines by which ``copy`` departs from ``original`` other than by its own lines (``own[i]``)."""
    problems = []
    matcher = difflib.SequenceMatcher(None, original, copy, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        foreign = [copy[j] for j in range(j1, j2) if not own[j]]
        problems += [f"+ {line}" for line in foreign]
        if tag == "delete" or (tag == "replace" and foreign):
            problems += [f"- {line}" for line in original[i1:i2]]
    return problems


def check_copies(variant: Path) -> list[str]:
    """Every departure of a marked copy in ``variant`` from its original, and every unmarked copy."""
    text = variant.read_text()
    lines, own, spans = text.splitlines(), own_lines(text), statements(text)
    problems = []
    marked = markers(text)
    sources = {source for source, _ in marked.values()} | {VARIANTS.get(variant.name)} - {None}
    originals = {s: (variant.parent / s).read_text() for s in sources}
    for name, (source, row) in marked.items():
        original_spans = statements(originals[source])
        if name not in original_spans:
            problems.append(f"{name}: no such statement in {source}")
            continue
        if name not in spans:
            problems.append(f"line {row}: the marker for {name} is above no statement of that name")
            continue
        first, last = spans[name]
        above = [r for r in range(row + 1, first) if lines[r - 1].strip()]
        if not row < first or any(r not in own for r in above):  # only '# DDP' lines between marker and copy
            problems.append(f"line {row}: the marker for {name} is not right above it (line {first})")
            continue
        o_first, o_last = original_spans[name]
        original = originals[source].splitlines()[o_first - 1 : o_last]
        copy = lines[first - 1 : last]
        for difference in copy_differences(original, copy, [r in own for r in range(first, last + 1)]):
            problems.append(f"{name} (from {source}): {difference}")
    for source, original in originals.items():  # every statement the two share is marked
        shared = set(statements(original)) & set(spans)
        problems += [
            f"{name} is in {source} too but carries no marker" for name in sorted(shared - set(marked))
        ]
    return problems


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_marked_copies_equal_their_original(variant):
    problems = check_copies(SCRIPTS / variant)
    assert not problems, "\n".join(problems)


def test_the_check_sees_a_changed_line_a_dropped_line_and_an_unmarked_addition(tmp_path):
    original = (SCRIPTS / "ppo_lago_metaworld.py").read_text()
    (tmp_path / "ppo_lago_metaworld.py").write_text(original)
    variant = (SCRIPTS / "ppo_lago_metaworld_multigpu.py").read_text()
    cases = {
        "changed": ("        self.critic = nn.Sequential(", "        self.critic = nn.Sequential(  # no"),
        "dropped": ("\n                    approx_kl = ((ratio - 1) - logratio).mean()\n", "\n"),
        "added": ("    return thunk\n", "    print('hello')\n    return thunk\n"),
    }
    for case, (old, new) in cases.items():
        assert old in variant, case
        path = tmp_path / "ppo_lago_metaworld_multigpu.py"
        path.write_text(variant.replace(old, new, 1))
        assert check_copies(path), case
    path.write_text(variant)
    assert not check_copies(path)
