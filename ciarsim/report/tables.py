"""Tables for the report page, written three ways: Markdown, HTML and LaTeX (booktabs).

A ``Table`` holds cells that are text, numbers or (value, 95% half-width) pairs; each writer
formats them its own way (``12.3 ± 0.4`` / ``$12.3 \\pm 0.4$``). No template engine is used:
pandas' ``to_latex`` needs jinja2, which ciarsim does not depend on.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from typing import Union

Cell = Union[str, int, float, tuple]

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "×": r"$\times$", "±": r"$\pm$"}  # fmt: skip


@dataclass(frozen=True)
class Table:
    """``header``: column titles; ``rows``: cells; ``label``: a LaTeX label (``tab:...``)."""

    caption: str
    header: list[str]
    rows: list[list[Cell]]
    label: str = ""
    right: tuple[int, ...] = ()  # text columns to right-align anyway (pre-formatted numbers)

    def numeric(self, j: int) -> bool:
        """Whether column ``j`` holds numbers (right-aligned)."""
        return j in self.right or any(not isinstance(r[j], str) for r in self.rows)


def fmt_number(v: float, decimals: int | None = None) -> str:
    """Four significant digits (at most three decimals); empty for NaN."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    return f"{v:.{_decimals(v) if decimals is None else decimals}f}"


def _decimals(v: float) -> int:
    if v == 0 or not math.isfinite(v):
        return 0
    return max(0, min(3, 3 - math.floor(math.log10(abs(v)))))


def _cell_text(c: Cell, pm: str) -> str:
    if isinstance(c, tuple):
        value, half = c
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        if half is None or math.isnan(half):
            return fmt_number(value)
        d = _decimals(value)
        return f"{fmt_number(value, d)}{pm}{fmt_number(half, d)}"
    return c if isinstance(c, str) else fmt_number(c)


def to_markdown(t: Table) -> str:
    """A GitHub-flavoured Markdown table (caption in bold above it)."""
    align = ["---:" if t.numeric(j) else ":---" for j in range(len(t.header))]
    lines = [f"**{t.caption}**", "", "| " + " | ".join(_md(h) for h in t.header) + " |",
             "|" + "|".join(align) + "|"]  # fmt: skip
    lines += ["| " + " | ".join(_md(_cell_text(c, " ± ")) for c in r) + " |" for r in t.rows]
    return "\n".join(lines) + "\n"


def _md(s: str) -> str:
    return s.replace("|", r"\|")


def to_html(t: Table) -> str:
    """An HTML ``<table>`` with a caption; numbers right-aligned."""
    cls = ['num' if t.numeric(j) else 'txt' for j in range(len(t.header))]
    head = "".join(f'<th class="{c}">{html.escape(h)}</th>' for c, h in zip(cls, t.header))
    body = "\n".join(
        "<tr>" + "".join(f'<td class="{c}">{html.escape(_cell_text(x, " ± "))}</td>'
                         for c, x in zip(cls, r)) + "</tr>"
        for r in t.rows
    )  # fmt: skip
    return (f"<table>\n<caption>{html.escape(t.caption)}</caption>\n<thead><tr>{head}</tr></thead>"
            f"\n<tbody>\n{body}\n</tbody>\n</table>\n")  # fmt: skip


def latex_escape(s: str) -> str:
    """``s`` with LaTeX's special characters escaped, ×, ± as math and "x" as ``x''."""
    s = re.sub(r'"([^"]*)"', "\x00\\1\x01", s)
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in s).replace("\x00", "``").replace(
        "\x01", "''")


def to_latex(t: Table) -> str:
    """A ``table`` float with a booktabs ``tabular`` (needs ``\\usepackage{booktabs}``)."""
    spec = "".join("r" if t.numeric(j) else "l" for j in range(len(t.header)))
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             rf"\caption{{{latex_escape(t.caption)}}}"]  # fmt: skip
    if t.label:
        lines.append(rf"\label{{{t.label}}}")
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
              " & ".join(latex_escape(h) for h in t.header) + r" \\", r"\midrule"]  # fmt: skip
    for r in t.rows:
        cells = [_latex_cell(c) for c in r]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _latex_cell(c: Cell) -> str:
    if isinstance(c, tuple):
        text = _cell_text(c, r" \pm ")
        return f"${text}$" if text else ""
    return latex_escape(_cell_text(c, ""))
