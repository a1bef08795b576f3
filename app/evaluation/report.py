"""Evaluation results for people: a terminal table, and a self-contained HTML report (its
figures, app.evaluation.figures, are embedded PNGs, so the page opens offline)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from app.evaluation.changes import Change, ChangeReport, QueryAnswer
from app.evaluation.figures import confidence_histogram, reliability_figure
from app.evaluation.provenance import RunInfo
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


def render_table(results: Sequence[SystemResult], thresholds: Sequence[Threshold] = (),
                 changes: ChangeReport | None = None) -> str:
    """Counts, one metrics row per system, the first system's reliability table and misses, and
    the queries whose answer changed (with --baseline or --against-knowledge)."""
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
    if changes is not None:
        lines += ["", f"Changes against {changes.against}: {changes.summary()}"]
        lines += [_change_line(c) for c in changes.changes]
    if thresholds:
        lines += [""] + [t.describe() for t in thresholds]
    return "\n".join(lines)


def _said(answer: QueryAnswer, right: bool) -> str:
    conf = "-" if answer.confidence is None else f"{answer.confidence:.2f}"
    return f"{answer.returned or 'no match'} ({conf}, {'right' if right else 'wrong'})"


def _change_line(change: Change) -> str:
    return (f"  {change.kind:<7} line {change.case.line}: {change.case.query!r}: "
            f"{_said(change.before, change.right_before)} → "
            f"{_said(change.after, change.right_after)}")


# ---------------------------------------------------------------- HTML

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: right; vertical-align: top; }
td:first-child, th:first-child, .text td, .run th { text-align: left; }
.text small { color: #555; }
.fixed { background: #e6f4e6; } .broken { background: #fbe3e3; }
img { max-width: 100%; margin-right: 1rem; }
"""


def _img(data: str | None, alt: str) -> str:
    if data is None:
        return ""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _entry(entry_id: str | None, questions: Mapping[str, str], empty: str) -> str:
    """An entry as its id and, below it, its question (the id alone says little)."""
    if entry_id is None:
        return html.escape(empty)
    question = questions.get(entry_id)
    shown = html.escape(entry_id)
    return shown if question is None else f"{shown}<br><small>{html.escape(question)}</small>"


def _header(info: RunInfo | None) -> str:
    if info is None:
        return ""
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                   for k, v in info.rows())
    return f'<table class="run">{rows}</table>'


def _reliability_rows(result: SystemResult) -> str:
    rows = []
    for b in result.reliability():
        interval = "-" if b.interval is None else f"{b.interval[0]:.3f}–{b.interval[1]:.3f}"
        rows.append(f"<tr><td>{b.lower:.1f}–{b.upper:.1f}</td><td>{b.count}</td>"
                    f"<td>{_number(b.mean_confidence)}</td><td>{_number(b.accuracy)}</td>"
                    f"<td>{interval}</td></tr>")
    return "".join(rows)


def _misses_section(result: SystemResult, questions: Mapping[str, str]) -> str:
    esc = html.escape
    misses = result.misses()
    rows = "".join(
        f"<tr><td>{m.line}</td><td>{esc(m.query)}</td>"
        f"<td>{'<br>'.join(_entry(e, questions, '') for e in m.expected) or 'no answer'}</td>"
        f"<td>{_entry(m.returned, questions, 'no confident match')}</td>"
        f"<td>{_entry(m.closest, questions, '')}</td><td>{_number(m.confidence)}</td></tr>"
        for m in misses
    )
    return (f"<h2>Misses of {esc(result.name)} ({len(misses)})</h2>\n"
            '<table class="text"><thead><tr><th>line</th><th>query</th><th>expected</th>'
            "<th>answered</th><th>closest</th><th>confidence</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def _changes_section(changes: ChangeReport | None, questions: Mapping[str, str]) -> str:
    if changes is None:
        return ""
    esc = html.escape

    def side(answer: QueryAnswer, right: bool) -> str:
        return (f"<td>{_entry(answer.returned, questions, 'no match')}</td>"
                f"<td>{_number(answer.confidence)}</td><td>{'right' if right else 'wrong'}</td>")

    rows = "".join(
        f'<tr class="{c.kind}"><td>{c.kind}</td><td>{c.case.line}</td><td>{esc(c.case.query)}</td>'
        f"{side(c.before, c.right_before)}{side(c.after, c.right_after)}</tr>"
        for c in changes.changes
    )
    return (f"<h2>Changes against {esc(changes.against)}</h2>\n<p>{esc(changes.summary())}.</p>\n"
            '<table class="text"><thead><tr><th>change</th><th>line</th><th>query</th>'
            "<th>before</th><th>confidence</th><th></th><th>now</th><th>confidence</th><th></th>"
            f"</tr></thead><tbody>{rows}</tbody></table>")


def render_html(results: Sequence[SystemResult], title: str,
                thresholds: Sequence[Threshold] = (), info: RunInfo | None = None,
                changes: ChangeReport | None = None,
                questions: Mapping[str, str] | None = None) -> str:
    """The report: what ran (`info`), the metrics, calibration figures, every miss and (with a
    before) every changed answer. `questions` maps entry ids to their question text."""
    esc = html.escape
    first = results[0]
    named = questions or {}
    header = "".join(f"<th>{esc(c)}</th>" for c, _ in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
        for row in metrics_rows(results)
    )
    described = "".join(f"<li><b>{esc(r.name)}</b>: {esc(r.description)}</li>" for r in results)
    gates = "".join(f"<li>{esc(t.describe())}</li>" for t in thresholds)
    threshold = info.threshold if info is not None else None
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{esc(title)}</h1>
{_header(info)}
<p>{len(first.outcomes)} queries: {len(first.in_scope)} in scope,
{len(first.out_of_scope)} out of scope.</p>
<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>
<ul>{described}</ul>
{f"<h2>Gate</h2><ul>{gates}</ul>" if gates else ""}
{_changes_section(changes, named)}
<h2>Calibration of {esc(first.name)}</h2>
{_img(reliability_figure(results), "reliability diagram")}
{_img(confidence_histogram(first, threshold), "histogram of confidence")}
<table><thead><tr><th>confidence</th><th>queries</th><th>mean confidence</th><th>accuracy</th>
<th>95 % interval</th></tr></thead><tbody>{_reliability_rows(first)}</tbody></table>
{_misses_section(first, named)}
</body></html>
"""
