"""The table writers: Markdown, HTML and LaTeX booktabs without jinja2."""

from ciarsim.report.tables import Table, latex_escape, to_html, to_latex, to_markdown

T = Table('Latency of "ciar" & co', ["policy", "mean (ms)", "share (%)"],
          [["gated_entropy", (12.345, 0.5), 50.0], ["base", (100.0, float("nan")), 100.0]],
          "tab:x")  # fmt: skip


def test_latex_is_booktabs_with_escaped_text_and_math_intervals():
    tex = to_latex(T)
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"gated\_entropy & $12.35 \pm 0.50$ & 50.00 \\" in tex
    assert r"base & $100.0$ & 100.0 \\" in tex  # no interval: the value alone
    assert r"\begin{tabular}{lrr}" in tex and r"\label{tab:x}" in tex
    assert r"``ciar'' \& co" in tex
    assert latex_escape("a_b%c#$~^") == r"a\_b\%c\#\$\textasciitilde{}\textasciicircum{}"


def test_markdown_and_html_show_plus_minus_and_escape():
    md = to_markdown(T)
    assert "| gated_entropy | 12.35 ± 0.50 | 50.00 |" in md and "|:---|---:|---:|" in md
    html = to_html(T)
    assert "&quot;ciar&quot; &amp; co" in html and '<td class="num">12.35 ± 0.50</td>' in html
