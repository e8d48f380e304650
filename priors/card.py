"""The model card (``README.md``) of a saved prior: Hub metadata, how to load it, what it is, its
metrics and the command that made it."""

from __future__ import annotations

import json

from priors.configuration import PriorConfig


def model_card(config: PriorConfig) -> str:
    provenance = config.provenance
    tags = ["reinforcement-learning", "lago", "action-prior", "cleanrl-lago", f"prior-{config.kind}"]
    if config.env_id:
        tags.append(config.env_id)
    lines = ["---", "library_name: cleanrl-lago", "tags:"]
    lines += [f"- {json.dumps(tag)}" for tag in tags]
    if provenance.metrics:
        lines.append("metrics:")
        lines += [f"- {json.dumps(name)}" for name in provenance.metrics]
    lines += [
        "---",
        "",
        f"# LaGO action prior ({config.kind}) for {config.env_id or 'an unnamed environment'}",
        "",
    ]
    lines.append(
        "An action prior `p(a | observation, instruction)` for LaGO (online RL guided by a language-model "
        "action prior), made with the `priors` library of cleanrl-lago. Load it with:"
    )
    lines += [
        "",
        "```python",
        "from priors import load_prior",
        "",
        'prior = load_prior("<this repo id or folder>")',
    ]
    lines += ["dist = prior.distribution(obs, instructions)", "```", ""]
    lines.append("| field | value |")
    lines.append("| --- | --- |")
    lines += [f"| {name} | {value} |" for name, value in config.card_rows()]
    lines.append(f"| action space | {config.action_space['type']} |")
    if provenance.dataset:
        lines.append(f"| demonstrations | `{provenance.dataset}` |")
    if provenance.metrics:
        lines += ["", "## Metrics", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {name} | {value} |" for name, value in provenance.metrics.items()]
    if provenance.command:
        lines += ["", "## Command", "", "```bash", provenance.command, "```"]
    if provenance.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in provenance.notes]
    return "\n".join(lines) + "\n"
