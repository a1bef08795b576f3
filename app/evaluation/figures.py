"""The report's figures (matplotlib, Agg backend), returned as base64 PNG so the page embeds them
and opens offline."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

from app.evaluation.scoring import SystemResult

HISTOGRAM_BINS = 20  # confidence bins of 0.05


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def reliability_figure(results: Sequence[SystemResult]) -> str | None:
    """Mean confidence against accuracy per bin. The first system's points carry their query
    count and a 95 % interval, so a bin of 2 queries reads as the guess it is; the other
    systems (--compare) are drawn as plain lines beside it."""
    calibrated = [r for r in results if r.reliability()]
    if not calibrated:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5.5, 5.5))
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    for result in calibrated:
        bins = [b for b in result.reliability() if b.count]
        xs = [b.mean_confidence or 0.0 for b in bins]
        ys = [b.accuracy or 0.0 for b in bins]
        if result is not results[0]:
            axes.plot(xs, ys, marker="o", markersize=4, alpha=0.7, label=result.name)
            continue
        intervals = [b.interval or (y, y) for b, y in zip(bins, ys, strict=True)]
        errors = [[max(0.0, y - low) for (low, _), y in zip(intervals, ys, strict=True)],
                  [max(0.0, high - y) for (_, high), y in zip(intervals, ys, strict=True)]]
        # Points, not a line: joining bins of 1-3 queries draws a zig-zag that is only noise.
        axes.errorbar(xs, ys, yerr=errors, fmt="none", linewidth=1, capsize=3,
                      color="tab:blue", label=f"{result.name} (n per bin, 95 % interval)")
        # Marker area grows with the bin's count: the eye weighs a bin of 125 above one of 2.
        axes.scatter(xs, ys, s=[12 + 4 * b.count ** 0.5 * 6 for b in bins], color="tab:blue",
                     zorder=3)
        for x, y, b in zip(xs, ys, bins, strict=True):
            axes.annotate(f"n={b.count}", (x, y), textcoords="offset points", fontsize=8,
                          xytext=(7, 4) if y < 0.9 else (7, -12))
    axes.set_xlabel("confidence (mean in bin)")
    axes.set_ylabel("observed accuracy of the top entry")
    axes.set_xlim(0, 1)
    axes.set_ylim(-0.02, 1.02)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=8)
    axes.set_title("Reliability diagram (10 equal-width bins)")
    return _png(figure)


def confidence_histogram(result: SystemResult, threshold: float | None) -> str | None:
    """How confident the system was on in-scope and on out-of-scope queries, with the answer
    threshold: out-of-scope mass right of the line is answered, in-scope mass left of it refused."""
    if not result.has_confidence or not result.outcomes:
        return None
    inside = [float(o.response.confidence or 0.0) for o in result.in_scope]
    outside = [float(o.response.confidence or 0.0) for o in result.out_of_scope]
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 3.5))
    edges = [i / HISTOGRAM_BINS for i in range(HISTOGRAM_BINS + 1)]
    refused = "" if threshold is None else \
        f"; {sum(c < threshold for c in inside)} below the threshold"
    answered = "" if threshold is None else \
        f"; {sum(c >= threshold for c in outside)} at or above it"
    # A log scale: the few queries on the wrong side of the line are the point of the figure.
    if inside:
        axes.hist(inside, bins=edges, alpha=0.6, log=True,
                  label=f"in scope ({len(inside)}{refused})")
    if outside:
        axes.hist(outside, bins=edges, alpha=0.6, log=True,
                  label=f"out of scope ({len(outside)}{answered})")
    if threshold is not None:
        axes.axvline(threshold, color="black", linestyle="--",
                     label=f"answer threshold {threshold:.2f}")
    axes.set_xlim(0, 1)
    axes.set_xlabel("confidence")
    axes.set_ylabel("queries (log scale)")
    axes.legend(fontsize=8, loc="upper center")
    axes.set_title(f"Confidence of {result.name}")
    return _png(figure)
