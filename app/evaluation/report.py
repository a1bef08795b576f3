"""Evaluation results for people: a terminal table, and a self-contained HTML report whose
figures (matplotlib, Agg backend) are embedded as base64 PNG so the page opens offline."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

from app.evaluation.scoring import SystemResult, Threshold

COLUMNS = (
    ("system", None), ("top1", "top1"), ("R@3", "recall_at_3"), ("R@5", "recall_at_5"),
    ("MRR", "mrr"), ("MAP", "map"), ("P@3", "p_at_3"), ("abstain", "abstention"),
    ("wrong-refusal", "wrong_refusal"), ("ECE", "ece"), ("p50 ms", "latency_p50_ms"),
    ("p95 ms", "latency_p95_ms"),
)
MISSES_SHOWN = 20
CATEGORY_COLUMNS = (
    ("category", None), ("queries", None), ("top1", "top1"), ("answered right", "answered_correct"),
    ("in-scope refused", "wrong_refusal"), ("OOS refused", "abstention"),
    ("OOS refused/flagged", "abstention_or_flag"), ("wrong at >=0.9", "confident_wrong"),
    ("ECE", "ece"),
)


def _cell(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    if key.startswith("latency"):
        return f"{value:.1f}"
    if key in ("mrr", "map", "ece"):
        return f"{value:.3f}"
    return f"{value:.1%}"


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                     for i, (h, w) in enumerate(zip(header, widths, strict=True)))
    out = [line, "-" * len(line)]
    for row in rows:
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    return out


def metrics_rows(results: Sequence[SystemResult]) -> list[list[str]]:
    rows = []
    for result in results:
        values = result.metrics()
        rows.append([result.name] + [_cell(key, values[key]) for _, key in COLUMNS[1:] if key])
    return rows


def render_table(results: Sequence[SystemResult], thresholds: Sequence[Threshold] = ()) -> str:
    """Counts, one metrics row per system, the first system's reliability table and misses."""
    first = results[0]
    lines = [f"{len(first.outcomes)} queries: {len(first.in_scope)} in scope, "
             f"{len(first.out_of_scope)} out of scope", ""]
    lines += _grid([c for c, _ in COLUMNS], metrics_rows(results))
    categories = first.categories()
    if categories:
        lines += ["", f"{first.name} by category"]
        lines += _grid([c for c, _ in CATEGORY_COLUMNS], [
            [name, str(len(part.outcomes))]
            + [_cell(key, part.metrics()[key]) for _, key in CATEGORY_COLUMNS[2:] if key]
            for name, part in categories.items()
        ])
    table = first.reliability()
    if table:
        lines += ["", f"Reliability of {first.name} (confidence bin -> share of right top "
                      "answers)"]
        lines += _grid(["confidence", "queries", "mean conf", "accuracy"], [
            [f"{b.lower:.1f}-{b.upper:.1f}", str(b.count),
             "-" if b.mean_confidence is None else f"{b.mean_confidence:.3f}",
             "-" if b.accuracy is None else f"{b.accuracy:.3f}"]
            for b in table
        ])
    misses = first.misses()
    lines += ["", f"Misses of {first.name}: {len(misses)}"]
    for miss in misses[:MISSES_SHOWN]:
        expected = ", ".join(miss.expected[:3]) + ("…" if len(miss.expected) > 3 else "")
        conf = "-" if miss.confidence is None else f"{miss.confidence:.2f}"
        lines.append(f"  line {miss.line}: {miss.query!r} expected {expected or 'no answer'}; "
                     f"answered {miss.returned or 'no confident match'} "
                     f"(closest {miss.closest}, confidence {conf})")
    if len(misses) > MISSES_SHOWN:
        lines.append(f"  … {len(misses) - MISSES_SHOWN} more (see --json or --report)")
    if thresholds:
        lines += [""] + [t.describe() for t in thresholds]
    return "\n".join(lines)


# ---------------------------------------------------------------- HTML


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def reliability_figure(results: Sequence[SystemResult]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    calibrated = [r for r in results if r.reliability()]
    if not calibrated:
        return None
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    for result in calibrated:
        points = [(b.mean_confidence or 0.0, b.accuracy or 0.0)
                  for b in result.reliability() if b.count]
        axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=result.name)
    axes.set_xlabel("confidence (mean in bin)")
    axes.set_ylabel("observed accuracy of the top entry")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.legend(loc="upper left")
    axes.set_title("Reliability diagram")
    return _png(figure)


def score_histogram(result: SystemResult) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inside = [o.response.top_score for o in result.in_scope if o.response.top_score is not None]
    outside = [o.response.top_score for o in result.out_of_scope
               if o.response.top_score is not None]
    if not inside and not outside:
        return None
    figure, axes = plt.subplots(figsize=(6, 3.5))
    everything = inside + outside
    low, high = min(everything), max(everything)
    bins = [low + (high - low) * i / 30 for i in range(31)] if high > low else 10
    if inside:
        axes.hist(inside, bins=bins, alpha=0.6, label=f"in scope ({len(inside)})")
    if outside:
        axes.hist(outside, bins=bins, alpha=0.6, label=f"out of scope ({len(outside)})")
    axes.set_xlabel("top score")
    axes.set_ylabel("queries")
    axes.legend()
    axes.set_title(f"Top scores of {result.name}")
    return _png(figure)


def _img(data: str | None, alt: str) -> str:
    if data is None:
        return ""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render_html(results: Sequence[SystemResult], title: str,
                thresholds: Sequence[Threshold] = ()) -> str:
    esc = html.escape
    first = results[0]
    header = "".join(f"<th>{esc(c)}</th>" for c, _ in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
        for row in metrics_rows(results)
    )
    described = "".join(f"<li><b>{esc(r.name)}</b>: {esc(r.description)}</li>" for r in results)
    reliability = "".join(
        f"<tr><td>{b.lower:.1f}–{b.upper:.1f}</td><td>{b.count}</td>"
        f"<td>{'-' if b.mean_confidence is None else f'{b.mean_confidence:.3f}'}</td>"
        f"<td>{'-' if b.accuracy is None else f'{b.accuracy:.3f}'}</td></tr>"
        for b in first.reliability()
    )
    misses = "".join(
        f"<tr><td>{m.line}</td><td>{esc(m.query)}</td><td>{esc(', '.join(m.expected) or '—')}"
        f"</td><td>{esc(m.returned or 'no confident match')}</td><td>{esc(m.closest or '')}</td>"
        f"<td>{'-' if m.confidence is None else f'{m.confidence:.3f}'}</td></tr>"
        for m in first.misses()
    )
    gates = "".join(f"<li>{esc(t.describe())}</li>" for t in thresholds)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border: 1px solid #ccc; padding: .25rem .5rem; text-align: right; }}
td:first-child, th:first-child, .misses td {{ text-align: left; }}
img {{ max-width: 100%; margin-right: 1rem; }}
</style></head><body>
<h1>{esc(title)}</h1>
<p>{len(first.outcomes)} queries: {len(first.in_scope)} in scope,
{len(first.out_of_scope)} out of scope.</p>
<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>
<ul>{described}</ul>
{f"<h2>Gate</h2><ul>{gates}</ul>" if gates else ""}
<h2>Calibration of {esc(first.name)}</h2>
{_img(reliability_figure(results), "reliability diagram")}
{_img(score_histogram(first), "histogram of top scores")}
<table><thead><tr><th>confidence</th><th>queries</th><th>mean confidence</th><th>accuracy</th>
</tr></thead><tbody>{reliability}</tbody></table>
<h2>Misses of {esc(first.name)} ({len(first.misses())})</h2>
<table class="misses"><thead><tr><th>line</th><th>query</th><th>expected</th><th>answered</th>
<th>closest</th><th>confidence</th></tr></thead><tbody>{misses}</tbody></table>
</body></html>
"""
