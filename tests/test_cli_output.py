"""What `run` prints: plain progress lines when stderr is not a terminal, and a summary whose
policy labels stay whole at 80 columns."""

import pandas as pd

from ciarsim import cli

GATED = ["gated-random", "gated-entropy", "gated-max_prob", "gated-topk_set", "gated-uhlm",
         "gated-interval", "ciar_batched-relaxed"]  # fmt: skip


def test_progress_lines_when_not_a_terminal(capsys, monkeypatch):
    clock = iter([0.0, 1.0, 2.0, 30.0, 31.0])
    monkeypatch.setattr(cli.time, "monotonic", lambda: next(clock))
    with cli._progress("decoding + simulating") as progress:
        progress(1, 4, "decoded base")  # first tick: printed
        progress(2, 4, "decoded sd")  # 1 s later: quiet
        progress(3, 4, "base @ point 1/2")  # 29 s later: printed
        progress(4, 4, "sd @ point 2/2")  # last: printed
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "decoding + simulating: 1/4 done (25%), 0:01 elapsed, ETA 0:03 (last: decoded base)",
        "decoding + simulating: 3/4 done (75%), 0:30 elapsed, ETA 0:10 (last: base @ point 1/2)",
        "decoding + simulating: 4/4 done (100%), 0:31 elapsed, ETA 0:00 (last: sd @ point 2/2)",
    ]


def _summary(latency_ms: float) -> pd.DataFrame:
    return pd.DataFrame([
        {"point": "p", "policy": label, "latency_mean_ms": latency_ms, "latency_p50_ms": 1200.0,
         "latency_p95_ms": 2500.0, "speedup_vs_base": 0.5, "cloud_calls_mean": 12.5,
         "cloud_calls_pct": 25.0, "caption_consistency": 0.7, "fd": 3000.0} for label in GATED
    ])  # fmt: skip


def test_summary_keeps_distinct_labels_on_an_80_column_terminal(capsys, monkeypatch):
    monkeypatch.setattr(cli, "out", cli.Console(width=80, force_terminal=True, color_system=None))
    cli._print_summary(_summary(7_400_123.0))
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 80
    for label in GATED:
        assert f" {label} " in text, label
    assert "…" not in text  # numbers fold, never cut


def test_summary_is_whole_in_a_log(capsys, monkeypatch):
    monkeypatch.setattr(cli, "out", cli.Console(width=80))  # not a terminal
    cli._print_summary(_summary(7_400_123.0))
    text = capsys.readouterr().out
    assert "7,400,123" in text and "…" not in text



def test_report_warnings_are_one_line_each(tmp_path, monkeypatch):
    import warnings

    import ciarsim.report
    from typer.testing import CliRunner

    def noisy(folder):
        warnings.warn("Attempting to set identical low and high ylims\nmakes singular", UserWarning)
        warnings.warn("Attempting to set identical low and high ylims\nmakes singular", UserWarning)
        return folder / "report.md"

    monkeypatch.setattr(ciarsim.report, "build_report", noisy)
    res = CliRunner().invoke(cli.app, ["report", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert res.output.count("warning: Attempting to set identical low and high ylims\n") == 1
    assert "UserWarning" not in res.output and "warnings.warn" not in res.output
