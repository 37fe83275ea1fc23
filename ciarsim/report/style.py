"""How every report figure looks: palette, one fixed style per policy, sizes, deterministic saves.

Colours are Okabe & Ito's colour-blind-safe set ("Color Universal Design", 2008); the latency
components use Paul Tol's "bright" set so they never read as policies. A policy keeps its colour,
marker and line style in every figure of a report (and of a comparison): known labels have a fixed
style, other labels get free colours in sorted order; no two policies of a report share a colour
(up to 18). Gated variants share the dashed line and differ by colour and marker.

Sizes: a LaTeX single column is ``COLUMN_IN`` (3.3 in) wide, a double column ``DOUBLE_IN`` (7 in).
Saving writes PNG (for the report page), PDF and SVG (for papers) with every timestamp and
software tag removed and the SVG id salt fixed, so the same data give byte-identical files.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import matplotlib
from matplotlib.figure import Figure

from ciarsim import io as store

COLUMN_IN = 3.3
DOUBLE_IN = 7.0
PNG_DPI = 200
FORMATS = ("png", "pdf", "svg")

OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
    "grey": "#999999",
}  # fmt: skip


@dataclass(frozen=True)
class PolicyStyle:
    color: str
    marker: str
    linestyle: str
    markersize: float = 5.0

    def line_kw(self) -> dict:
        """Keyword arguments for ``Axes.plot``."""
        return {"color": self.color, "marker": self.marker, "linestyle": self.linestyle,
                "markersize": self.markersize, "linewidth": 1.4}  # fmt: skip


# More colours, distinct from Okabe-Ito's and from each other (Paul Tol "muted" and "dark"), for
# the policies a report has beyond eight: no two policies of one report share a colour.
EXTRA_COLORS = ("#332288", "#44AA99", "#999933", "#882255", "#AA7733", "#CC6677", "#117733",
                "#6699CC", "#AA4499", "#661100")  # fmt: skip

_O = OKABE_ITO
KNOWN_STYLES: dict[str, PolicyStyle] = {
    "base": PolicyStyle(_O["black"], "o", "-"),
    "ciar": PolicyStyle(_O["vermillion"], "*", "-", 7.5),
    "sd": PolicyStyle(_O["sky"], "s", "-"),
    "lantern": PolicyStyle(_O["blue"], "D", "-", 4.5),
    "code_split": PolicyStyle(_O["purple"], "P", "-"),
    "oracle": PolicyStyle(_O["green"], "^", ":"),
    "device_only": PolicyStyle(_O["grey"], "X", "-"),
    "gated-interval": PolicyStyle(_O["orange"], "o", "--"),
    "gated-entropy": PolicyStyle("#332288", "v", "--"),
    "gated-max_prob": PolicyStyle("#44AA99", "<", "--"),
    "gated-topk_set": PolicyStyle("#882255", ">", "--"),
    "gated-uhlm": PolicyStyle("#999933", "h", "--"),
    "gated-random": PolicyStyle("#AA7733", "d", "--"),
    "ciar_pipelined": PolicyStyle("#CC6677", "p", "-."),
    "ciar_batched-exact": PolicyStyle("#661100", "H", "-."),
    "ciar_batched-relaxed": PolicyStyle("#AA4499", "8", "-."),
    "cloud_burst": PolicyStyle("#6699CC", "d", "-."),
}
_SPARE_COLORS = [*(_O[k] for k in ("vermillion", "blue", "green", "orange", "purple", "sky",
                                   "black", "grey")), *EXTRA_COLORS, _O["yellow"]]  # fmt: skip
_SPARE_MARKERS = ["p", "8", "H", "d", "v", "^", "<", ">", "s", "o", "D"]
_SPARE_LINES = ["-.", (0, (3, 1, 1, 1, 1, 1)), (0, (1, 1))]

# Latency components and timeline lanes (Paul Tol "bright").
COMPONENTS = {
    "device_compute_ms": ("device compute", "#4477AA"),
    "uplink_ms": ("uplink", "#66CCEE"),
    "downlink_ms": ("downlink", "#228833"),
    "rtt_wait_ms": ("RTT wait (propagation)", "#CCBB44"),
    "cloud_queue_ms": ("cloud queue", "#BBBBBB"),
    "cloud_compute_ms": ("cloud compute", "#EE6677"),
}
LANE_COLORS = {
    "device": COMPONENTS["device_compute_ms"][1],
    "uplink": COMPONENTS["uplink_ms"][1],
    "cloud_queue": COMPONENTS["cloud_queue_ms"][1],
    "cloud": COMPONENTS["cloud_compute_ms"][1],
    "downlink": COMPONENTS["downlink_ms"][1],
}

# Where each token came from (ciarsim.trace.SOURCE_*), in SOURCE order.
SOURCE_COLORS = (_O["blue"], _O["yellow"], _O["green"], _O["vermillion"])
SOURCE_LABELS = ("cloud", "device, kept locally", "device, verified by cloud",
                 "cloud resampled")  # fmt: skip

RC = {
    "font.size": 8.0,
    "axes.titlesize": 8.0,
    "axes.labelsize": 8.0,
    "legend.fontsize": 7.0,
    "xtick.labelsize": 7.0,
    "ytick.labelsize": 7.0,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "savefig.dpi": PNG_DPI,
    "svg.hashsalt": "ciarsim",
    "svg.fonttype": "path",
    "pdf.fonttype": 42,
    "path.simplify": False,
    "image.interpolation": "nearest",
}


def policy_styles(labels: Iterable[str]) -> dict[str, PolicyStyle]:
    """One style per label, no colour used twice while colours last (18): the fixed style of
    known labels, then for the others (sorted) their family's colour if no one else has it, else
    the first free colour; past 18 labels, free (colour, marker) combinations."""
    labels = sorted(set(labels))
    out = {lab: KNOWN_STYLES[lab] for lab in labels if lab in KNOWN_STYLES}
    colors = {s.color for s in out.values()}
    used = {(s.color, s.marker) for s in out.values()}
    for lab in (x for x in labels if x not in out):
        fam = KNOWN_STYLES.get(family(lab))
        free = [c for c in _SPARE_COLORS if c not in colors]
        if fam is not None and fam.color not in colors:
            style = PolicyStyle(fam.color, fam.marker, "-.", fam.markersize)
        elif free:
            marker = fam.marker if fam else _SPARE_MARKERS[len(out) % len(_SPARE_MARKERS)]
            style = PolicyStyle(free[0], marker, fam.linestyle if fam else "-.")
        else:
            combos = itertools.product(_SPARE_LINES, _SPARE_MARKERS, _SPARE_COLORS)
            line, marker, color = next(c for c in combos if (c[2], c[1]) not in used)
            style = PolicyStyle(color, marker, line)
        out[lab] = style
        colors.add(style.color)
        used.add((style.color, style.marker))
    return out


def family(label: str) -> str:
    """The policy family of a label: the longest known label it starts with (``ciar-t0.1`` ->
    ``ciar``), else the label itself."""
    hits = [k for k in KNOWN_STYLES if label == k or label.startswith(k + "-")
            or label.startswith(k + "_")]  # fmt: skip
    return max(hits, key=len) if hits else label


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """The report's rc settings, scoped to one block (no global state is changed)."""
    with matplotlib.rc_context(RC):
        yield


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure with constrained layout, drawn by Agg on save; it is not registered with pyplot,
    so no backend is chosen and no global figure list grows."""
    return Figure(figsize=(width_in, height_in), dpi=PNG_DPI, layout="constrained")


def save_figure(fig: Figure, base: Path, formats: Iterable[str] = FORMATS) -> list[Path]:
    """Write ``base.<fmt>`` for each format, deterministically and atomically; return the paths."""
    meta = {
        "png": {"Software": None},
        "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
        "svg": {"Date": None, "Creator": None},
    }
    paths = []
    with figure_style():
        fig.draw_without_rendering()  # constrained layout once, then frozen for every format
        fig.set_layout_engine("none")
        for fmt in formats:
            path = base.with_suffix(f".{fmt}")
            store.write_atomic(path, lambda p, f=fmt: fig.savefig(
                p, format=f, metadata=meta[f], dpi=PNG_DPI))  # fmt: skip
            paths.append(path)
    return paths
