"""Figures for the report as inline SVG text (matplotlib, imported only when a report is drawn).

(x, y[, low, high]) series -> one SVG string per figure, glyphs as paths: the page needs no font or network.
"""

import io

SIZE_TICKS = [8, 1 << 10, 1 << 20, 1 << 30]
SIZE_LABELS = ["8 B", "1 KiB", "1 MiB", "1 GiB"]
MARGINS = {"left": 0.08, "right": 0.98, "top": 0.9, "bottom": 0.16}


def _plt():
    try:
        import matplotlib
    except ImportError:
        from .errors import EXIT_UNAVAILABLE, NcbenchError

        raise NcbenchError(
            "ncbench report draws with matplotlib, which is not installed: pip install 'ncbench[report]'",
            EXIT_UNAVAILABLE,
        ) from None

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "svg.fonttype": "path",
            "font.size": 8,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "svg.hashsalt": "ncbench",
            "figure.dpi": 100,
        }
    )
    return plt


def figure(panels: list[dict], *, width_in: float = 7.5, height_in: float = 3.0) -> str:
    """Return one SVG of side-by-side panels.

    Each panel: {"title", "xlabel", "ylabel", "xlog", "ylog", "sizes" (x is bytes), "series": [{"label", "x", "y",
    optional "low", "high", "style", "marker", "color"}], optional "diagonal": True (a y = x line)}; a label
    starting with "_" stays out of the legend.
    """
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(width_in, height_in), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        for s in panel["series"]:
            (line,) = ax.plot(
                s["x"],
                s["y"],
                s.get("style", "-"),
                marker=s.get("marker", "."),
                markersize=3,
                linewidth=1.2,
                label=s["label"],
                color=s.get("color"),
            )
            if s.get("low") is not None:
                ax.fill_between(s["x"], s["low"], s["high"], color=line.get_color(), alpha=0.15, linewidth=0)
        if panel.get("diagonal"):
            lo, hi = ax.get_xlim()
            ax.plot([lo, hi], [lo, hi], color="0.5", linewidth=0.8, linestyle=":")
        ax.set_xscale("log" if panel.get("xlog", True) else "linear")
        ax.set_yscale("log" if panel.get("ylog", False) else "linear")
        if panel.get("sizes"):
            ax.set_xticks(SIZE_TICKS, SIZE_LABELS)
        if panel.get("hline") is not None:
            ax.axhline(panel["hline"], color="0.4", linewidth=0.8)
        ax.set_title(panel["title"], fontsize=9)
        ax.set_xlabel(panel.get("xlabel", ""))
        ax.set_ylabel(panel.get("ylabel", ""))
        if len(panel["series"]) > 1 or panel.get("legend"):
            ax.legend(fontsize=6.5, loc="upper left", framealpha=0.7)  # "best" tests every line: slow with many
    fig.subplots_adjust(**MARGINS, wspace=0.28 + 0.04 * len(panels))  # fixed: tight_layout was half the report's time
    return _svg(plt, fig)


def _svg(plt, fig) -> str:
    out = io.StringIO()
    fig.savefig(out, format="svg")
    plt.close(fig)
    text = out.getvalue()
    return text[text.index("<svg") :]  # inline: drop the XML prologue and doctype


def bars(labels: list[str], groups: dict[str, list[float]], *, title: str, ylabel: str) -> str:
    """Return an SVG bar chart: one cluster per label, one bar per group."""
    import numpy as np

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 3.0))
    width = 0.8 / max(len(groups), 1)
    x = np.arange(len(labels))
    for i, (name, values) in enumerate(groups.items()):
        ax.bar(x + i * width - 0.4 + width / 2, values, width, label=name)
    ax.set_xticks(x, labels, rotation=15, ha="right", fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    fig.subplots_adjust(**{**MARGINS, "bottom": 0.25})
    return _svg(plt, fig)
