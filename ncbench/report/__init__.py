"""Everything -> one document a person reads: self-contained HTML (inline SVG) and its Markdown twin.

results (CSV + sidecars), topologies (fitted and nominal), prediction sweeps and health verdicts ->
inputs.gather (read and check every input; the model's own functions predict and size the designs) ->
sections.build (runs, measured, model, predictions, fabrics, health: formatting only) ->
document.write (report.html, report.md and report_files/*.svg, built aside and renamed into place whole).
"""

from .document import check_out, to_html, to_markdown, write
from .inputs import Inputs, gather
from .sections import (
    CLEAN,
    FAULTY,
    SECTIONS,
    UNKNOWN,
    RunState,
    build,
    crossovers,
    latest_run,
    measured_section,
    run_state,
    run_states,
    runs_section,
)

__all__ = [
    "CLEAN",
    "FAULTY",
    "SECTIONS",
    "UNKNOWN",
    "Inputs",
    "RunState",
    "build",
    "check_out",
    "crossovers",
    "gather",
    "latest_run",
    "measured_section",
    "run_state",
    "run_states",
    "runs_section",
    "to_html",
    "to_markdown",
    "write",
]
