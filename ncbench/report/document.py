"""Sections -> the two documents: report.html (one file, plots inline as SVG) and report.md with report_files/.

Both are built in a hidden folder beside --out and renamed into place whole, so a reader never sees half a report.
"""

import html
import os
import shutil
from pathlib import Path

import numpy as np

from .. import records
from .sections import SECTIONS, Section


def _cell(x) -> str:
    if isinstance(x, float | np.floating):
        return "" if np.isnan(x) else f"{x:.4g}"
    return "" if x is None else str(x)


CSS = """body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:12px;margin:.6em 0}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left}
th{background:#f4f4f4}figure{margin:1em 0}figcaption{font-size:12px;color:#555}figure svg{width:100%;height:auto}
pre{font-size:11px;background:#f8f8f8;padding:.6em;overflow-x:auto}nav a{margin-right:1em}"""


def to_html(sections: dict[str, Section], title: str, sources: list[str]) -> str:
    e = html.escape
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{e(title)}</h1><p>Generated {e(records.now_iso())} from {e(', '.join(sources))}.</p>",
        "<nav>" + "".join(f"<a href='#{k}'>{e(t)}</a>" for k, t in SECTIONS) + "</nav>",
    ]
    for key, heading in SECTIONS:
        parts.append(f"<section id='{key}'><h2>{e(heading)}</h2>")
        for block in sections[key].blocks:
            if block[0] == "p":
                parts.append(f"<p>{e(block[1])}</p>")
            elif block[0] == "pre":
                parts.append(f"<pre>{e(block[1])}</pre>")
            elif block[0] == "table":
                head = "".join(f"<th>{e(h)}</th>" for h in block[1])
                body = "".join("<tr>" + "".join(f"<td>{e(_cell(c))}</td>" for c in row) + "</tr>" for row in block[2])
                parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            else:
                parts.append(
                    f"<figure class='plot' id='plot-{e(block[1])}'>{block[3]}<figcaption>{e(block[2])}</figcaption></figure>"
                )
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "".join(parts)


def to_markdown(sections: dict[str, Section], title: str, sources: list[str]) -> tuple[str, dict[str, str]]:
    """Return the Markdown twin and its figures (file name -> SVG), which it links from report_files/."""
    lines = [f"# {title}", "", f"Generated {records.now_iso()} from {', '.join(sources)}.", ""]
    figures = {}
    for key, heading in SECTIONS:
        lines += [f"## {heading}", ""]
        for block in sections[key].blocks:
            if block[0] == "p":
                lines += [block[1], ""]
            elif block[0] == "pre":
                lines += ["```", block[1], "```", ""]
            elif block[0] == "table":
                lines.append("| " + " | ".join(block[1]) + " |")
                lines.append("|" + "---|" * len(block[1]))
                lines += ["| " + " | ".join(_cell(c).replace("|", "\\|") for c in row) + " |" for row in block[2]]
                lines.append("")
            else:
                figures[f"{block[1]}.svg"] = block[3]
                lines += [f"![{block[2]}](report_files/{block[1]}.svg)", ""]
    return "\n".join(lines), figures


def check_out(out: Path, force: bool = False) -> None:
    """Refuse (64) an --out that exists and is not an empty folder, unless `force`: the one rule (records.claim)."""
    records.claim(out, force)


def write(out: Path, sections: dict[str, Section], *, title: str, sources: list[str], force: bool = False) -> Path:
    """Write report.html, report.md and report_files/ into `out`, whole: built aside, then renamed into place."""
    check_out(out, force)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        (tmp / "report_files").mkdir(parents=True)
        (tmp / "report.html").write_text(to_html(sections, title, sources))
        md, figures = to_markdown(sections, title, sources)
        (tmp / "report.md").write_text(md)
        for name, svg in figures.items():
            (tmp / "report_files" / name).write_text(svg)
        records.write_json(tmp / "sources.json", {"sources": sources, "generated": records.now_iso()})
        if out.is_dir():
            shutil.rmtree(out)  # empty, or --force: replaced whole, only once the new report is complete
        elif out.exists():
            out.unlink()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out / "report.html"
