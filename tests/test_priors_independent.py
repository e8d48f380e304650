"""The priors library depends on nothing of cleanrl_lago: the scripts import priors, never the reverse."""

import ast
import subprocess
import sys
from pathlib import Path

PRIORS = Path(__file__).resolve().parents[1] / "priors"


def imported_modules(file: Path) -> list[str]:
    """Every module an ``import`` or ``from ... import`` in ``file`` names, at any depth."""
    modules = []
    for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            modules.append(node.module)
    return modules


def test_no_module_of_priors_imports_cleanrl_lago():
    files = sorted(PRIORS.rglob("*.py"))
    assert len(files) >= 9
    offenders = {
        f"{file.relative_to(PRIORS.parent)}: {module}"
        for file in files
        for module in imported_modules(file)
        if module == "cleanrl_lago" or module.startswith("cleanrl_lago.")
    }
    assert not offenders


def test_importing_priors_loads_no_cleanrl_lago_module():
    modules = ", ".join(
        f"priors.{file.stem}" for file in sorted(PRIORS.glob("*.py")) if file.stem != "__init__"
    )
    code = (
        f"import sys, importlib; [importlib.import_module(m) for m in '{modules}'.split(', ')]; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'cleanrl_lago'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
