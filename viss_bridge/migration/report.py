"""Progress reports: a self-contained HTML page (inline SVG charts) and Markdown for a ticket.

The HTML file needs nothing but a browser: no scripts, fonts, images or style
sheets from anywhere else, so a manager can open it from a mail attachment or a
file share. Charts are plain SVG with the figures written next to them, so the
numbers are readable without hovering and survive printing.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from viss_bridge.migration.tracking import STATE_LABELS, STATES, Event, ServiceState, summary

STATE_COLOURS = {"inventoried": "#9aa5b1", "mapped": "#4e79a7", "shadowing": "#f28e2b",
                 "switched_over": "#59a14f", "retired": "#76448a"}
PARITY_FULL, PARITY_NEAR, PARITY_LOW = "#2e7d32", "#f9a825", "#c62828"
PROGRESS_WIDTH = 1000
PARITY_BAR_WIDTH = 500


def parity_colour(parity: float) -> str:
    return PARITY_FULL if parity >= 100.0 else PARITY_NEAR if parity >= 90.0 else PARITY_LOW


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def progress_svg(counts: dict[str, int], total: int) -> str:
    """One horizontal bar split by state, widths proportional to the number of services."""
    height = 48
    parts = [f'<svg id="progress-chart" xmlns="http://www.w3.org/2000/svg" width="{PROGRESS_WIDTH}" '
             f'height="{height + 34}" viewBox="0 0 {PROGRESS_WIDTH} {height + 34}" role="img" '
             f'aria-label="Services per migration state">']
    x = 0.0
    for state in STATES:
        count = counts.get(state, 0)
        if not count or not total:
            continue
        width = PROGRESS_WIDTH * count / total
        parts.append(f'<rect class="segment" data-state="{state}" data-count="{count}" x="{x:.2f}" y="0" '
                     f'width="{width:.2f}" height="{height}" fill="{STATE_COLOURS[state]}"/>')
        if width >= 28:
            parts.append(f'<text x="{x + width / 2:.2f}" y="{height / 2 + 6}" text-anchor="middle" '
                         f'font-size="16" font-weight="bold" fill="#ffffff">{count}</text>')
        x += width
    if not total:
        parts.append(f'<rect x="0" y="0" width="{PROGRESS_WIDTH}" height="{height}" fill="#eeeeee"/>'
                     f'<text x="10" y="30" font-size="16" fill="#555555">no services tracked yet</text>')
    # percentage scale under the bar
    for tick in range(0, 101, 25):
        tx = min(PROGRESS_WIDTH - 1, PROGRESS_WIDTH * tick / 100)
        anchor = "start" if tick == 0 else "end" if tick == 100 else "middle"
        parts.append(f'<line x1="{tx:.1f}" y1="{height}" x2="{tx:.1f}" y2="{height + 6}" stroke="#555555"/>'
                     f'<text x="{tx:.1f}" y="{height + 22}" font-size="12" text-anchor="{anchor}" '
                     f'fill="#333333">{tick}%</text>')
    parts.append("</svg>")
    return "".join(parts)


def parity_svg(states: list[ServiceState]) -> str:
    """One bar per service: the share of shadowed requests whose answers were equal."""
    row = 30
    label_width = 300
    height = max(1, len(states)) * row + 30
    width = label_width + PARITY_BAR_WIDTH + 90
    parts = [f'<svg id="parity-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="Parity per service">']
    axis_y = len(states) * row + 4
    for tick in (0, 50, 90, 100):
        tx = label_width + PARITY_BAR_WIDTH * tick / 100
        parts.append(f'<line x1="{tx:.1f}" y1="0" x2="{tx:.1f}" y2="{axis_y}" stroke="#bbbbbb" '
                     f'stroke-dasharray="3,3"/><text x="{tx:.1f}" y="{axis_y + 16}" font-size="11" '
                     f'text-anchor="middle" fill="#333333">{tick}%</text>')
    for index, state in enumerate(states):
        y = index * row
        parts.append(f'<text x="{label_width - 10}" y="{y + 19}" text-anchor="end" font-size="13" '
                     f'fill="#222222">{_e(state.name)}</text>')
        parts.append(f'<rect x="{label_width}" y="{y + 4}" width="{PARITY_BAR_WIDTH}" height="{row - 10}" '
                     f'fill="#f1f1f1"/>')
        if state.parity is None:
            parts.append(f'<text class="parity-missing" data-service="{_e(state.name)}" x="{label_width + 8}" '
                         f'y="{y + 19}" font-size="12" fill="#666666">not shadowed yet</text>')
            continue
        bar = PARITY_BAR_WIDTH * max(0.0, min(100.0, state.parity)) / 100
        parts.append(f'<rect class="parity-bar" data-service="{_e(state.name)}" data-parity="{state.parity:g}" '
                     f'x="{label_width}" y="{y + 4}" width="{bar:.2f}" height="{row - 10}" '
                     f'fill="{parity_colour(state.parity)}"/>')
        parts.append(f'<text x="{label_width + PARITY_BAR_WIDTH + 8}" y="{y + 19}" font-size="13" '
                     f'fill="#222222">{state.parity:.1f}%</text>')
    parts.append("</svg>")
    return "".join(parts)


def timeline_points(events: list[Event]) -> list[tuple[dt.date, int]]:
    """Services switched over or retired, per day (cumulative), from the event history."""
    moved: dict[str, bool] = {}
    per_day: dict[dt.date, int] = {}
    for event in sorted(events, key=lambda e: e.at):
        moved[event.service] = event.to_state in ("switched_over", "retired")
        per_day[event.at.date()] = sum(moved.values())
    return sorted(per_day.items())


def timeline_svg(points: list[tuple[dt.date, int]], total: int) -> str:
    width, height, pad = 1000, 220, 40
    parts = [f'<svg id="timeline-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="Services moved over time">']
    parts.append(f'<line x1="{pad}" y1="{height - pad}" x2="{width - 10}" y2="{height - pad}" stroke="#555555"/>'
                 f'<line x1="{pad}" y1="10" x2="{pad}" y2="{height - pad}" stroke="#555555"/>')
    top = max(total, 1)
    parts.append(f'<text x="{pad - 6}" y="16" font-size="11" text-anchor="end" fill="#333333">{top}</text>'
                 f'<text x="{pad - 6}" y="{height - pad}" font-size="11" text-anchor="end" fill="#333333">0</text>')
    if points:
        first, last = points[0][0], points[-1][0]
        span = max((last - first).days, 1)
        coords = []
        for day, value in points:
            x = pad + (width - pad - 20) * ((day - first).days / span if last != first else 1.0)
            y = (height - pad) - (height - pad - 10) * value / top
            coords.append((x, y, day, value))
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{STATE_COLOURS["switched_over"]}" '
                     f'stroke-width="3"/>')
        for x, y, day, value in coords:
            parts.append(f'<circle class="timeline-point" data-date="{day.isoformat()}" data-moved="{value}" '
                         f'cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{STATE_COLOURS["switched_over"]}"/>')
        parts.append(f'<text x="{pad}" y="{height - pad + 18}" font-size="11" fill="#333333">{first.isoformat()}</text>'
                     f'<text x="{width - 10}" y="{height - pad + 18}" font-size="11" text-anchor="end" '
                     f'fill="#333333">{last.isoformat()}</text>')
    parts.append("</svg>")
    return "".join(parts)


_CSS = """
body{font-family:DejaVu Sans,Arial,Helvetica,sans-serif;margin:24px 32px;color:#222;background:#fff}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:18px;margin:28px 0 8px}
.meta{color:#555;font-size:13px;margin-bottom:18px}
.tiles{display:flex;gap:16px;margin:12px 0 8px}
.tile{border:1px solid #ddd;border-radius:6px;padding:10px 16px;min-width:150px}
.tile .n{font-size:28px;font-weight:bold}
.tile .l{font-size:12px;color:#555}
.legend{display:flex;gap:18px;font-size:13px;margin:6px 0}
.legend span.sw{display:inline-block;width:12px;height:12px;margin-right:6px;vertical-align:-1px}
table{border-collapse:collapse;font-size:13px;margin-top:6px}
th,td{border-bottom:1px solid #e3e3e3;padding:5px 10px;text-align:left}
th{background:#fafafa}
td.num{text-align:right}
"""


def _differences_text(fields: dict[str, int] | None, limit: int = 3) -> str:
    if not fields:
        return "-"
    shown = [f"{path.rsplit('/', 1)[-1]} ({count})" for path, count in list(fields.items())[:limit]]
    more = len(fields) - limit
    return ", ".join(shown) + (f", {more} more" if more > 0 else "")


def render_html(states: list[ServiceState], events: list[Event], title: str = "Legacy service migration",
                generated: dt.datetime | None = None, differences: dict[str, dict[str, int]] | None = None) -> str:
    differences = differences or {}
    generated = generated or dt.datetime.now(dt.timezone.utc)
    figures = summary(states)
    counts = figures["counts"]
    tiles = [("services", figures["total"], "tile-total"),
             ("switched over or retired", f'{figures["moved"]} ({figures["moved_percent"]:.1f}%)', "tile-moved"),
             ("mean parity (shadowed services)", _pct(figures["mean_parity"]), "tile-parity"),
             ("services at 100% parity", f'{figures["full_parity"]} of {figures["measured"]}', "tile-full")]
    legend = "".join(f'<span class="legend-item" data-state="{s}"><span class="sw" style="background:{STATE_COLOURS[s]}">'
                     f'</span>{STATE_LABELS[s]}: <b>{counts.get(s, 0)}</b></span>' for s in STATES)
    rows = []
    for s in states:
        rows.append("<tr data-service=\"{n}\"><td>{n}</td><td>{t}</td><td>{st}</td><td class=\"num\">{p}</td>"
                    "<td class=\"num\">{r}</td><td>{sa}</td><td>{df}</td><td class=\"num\">{o}</td>"
                    "<td class=\"num\">{c}</td><td>{d}</td><td>{u}</td></tr>".format(
                        n=_e(s.name), t=_e(s.title), st=_e(STATE_LABELS.get(s.state, s.state)), p=_pct(s.parity),
                        r=s.shadow_requests, sa=s.shadow_at.strftime("%Y-%m-%d %H:%M") if s.shadow_at else "-",
                        df=_e(_differences_text(differences.get(s.name))) if s.parity is not None else "-",
                        o=s.operations, c=s.complexity, d=_e(", ".join(s.datasets) or "-"),
                        u=s.updated_at.strftime("%Y-%m-%d")))
    tile_html = "".join(f'<div class="tile" id="{i}"><div class="n">{_e(v)}</div><div class="l">{_e(label)}</div></div>'
                        for label, v, i in tiles)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>{_e(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{_e(title)}</h1>
<div class="meta">Generated {generated.strftime("%Y-%m-%d %H:%M UTC")} by viss-bridge from the migration database.</div>
<div class="tiles">{tile_html}</div>
<h2>Progress: services per state</h2>
{progress_svg(counts, figures["total"])}
<div class="legend">{legend}</div>
<h2>Parity: answers of the new path equal to the legacy provider's</h2>
{parity_svg(states)}
<h2>Services switched over or retired, over time</h2>
{timeline_svg(timeline_points(events), figures["total"])}
<h2>Services</h2>
<table id="services"><thead><tr><th>service</th><th>WSDL service</th><th>state</th><th>parity</th>
<th>requests shadowed</th><th>last shadow run</th><th>fields differing (requests)</th><th>operations</th><th>complexity</th><th>datasets</th><th>updated</th></tr></thead>
<tbody>{''.join(rows)}</tbody></table>
</body></html>
"""


def render_markdown(states: list[ServiceState], generated: dt.datetime | None = None,
                    differences: dict[str, dict[str, int]] | None = None) -> str:
    differences = differences or {}
    generated = generated or dt.datetime.now(dt.timezone.utc)
    figures = summary(states)
    counts = figures["counts"]
    lines = [f"## Legacy service migration: {figures['moved']} of {figures['total']} services moved "
             f"({figures['moved_percent']:.1f}%)", "",
             f"_Generated {generated.strftime('%Y-%m-%d %H:%M UTC')} by `viss-bridge migrate report`._", "",
             "| state | services |", "|---|---:|"]
    lines += [f"| {STATE_LABELS[s]} | {counts.get(s, 0)} |" for s in STATES]
    lines += ["", f"Mean parity of shadowed services: **{_pct(figures['mean_parity'])}**; "
                  f"{figures['full_parity']} of {figures['measured']} at 100%.", "",
              "| service | state | parity | requests shadowed | last shadow run | fields differing (requests) "
              "| complexity | datasets |",
              "|---|---|---:|---:|---|---|---:|---|"]
    for s in states:
        lines.append(f"| `{s.name}` | {STATE_LABELS.get(s.state, s.state)} | {_pct(s.parity)} | {s.shadow_requests} | "
                     f"{s.shadow_at.strftime('%Y-%m-%d %H:%M') if s.shadow_at else '-'} | "
                     f"{_differences_text(differences.get(s.name)) if s.parity is not None else '-'} | {s.complexity} | "
                     f"{', '.join(s.datasets) or '-'} |")
    return "\n".join(lines) + "\n"
