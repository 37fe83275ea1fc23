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


def test_summary_keeps_distinct_labels_at_80_columns(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(cli, "out", cli.Console(width=80))
    rows = [{"point": "p", "policy": label, "latency_mean_ms": 1234.5, "latency_p50_ms": 1200.0,
             "latency_p95_ms": 2500.0, "speedup_vs_base": 0.5, "cloud_calls_mean": 12.5,
             "cloud_calls_pct": 25.0, "caption_consistency": 0.7, "fd": 3000.0}
            for label in GATED]  # fmt: skip
    cli._print_summary(pd.DataFrame(rows))
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 80
    for label in GATED:
        assert f" {label} " in text, label
