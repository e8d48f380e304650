"""The scripts in tests: runs, their TensorBoard scalars (one implementation for tests and benchmarks,
``cleanrl_lago.utils.benchmark``), and a script with its LaGO lines removed."""

from cleanrl_lago.utils.benchmark import REPO, only_run, run_script, run_torchrun, scalars, script_env

__all__ = ["REPO", "only_run", "run_script", "run_torchrun", "scalars", "script_env", "strip_lago"]


def strip_lago(source: str) -> str:
    """The script with every LaGO line and block (``# LaGO`` ... ``# end LaGO``) removed."""
    kept, skipping = [], False
    for line in source.splitlines():
        marker = line.strip()
        if marker.startswith("# LaGO"):
            skipping = True
        elif marker == "# end LaGO":
            skipping = False
        elif not skipping and not line.rstrip().endswith("# LaGO"):
            kept.append(line)
    return "\n".join(kept) + "\n"
