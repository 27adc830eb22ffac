"""Small inline SVG charts for the console (no script, no style attribute: the CSP forbids both).

Figures are written next to the bars, so a chart reads without hovering and in a screenshot.
"""

from __future__ import annotations

import html
from typing import Sequence

from markupsafe import Markup


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def bars(items: Sequence[tuple[str, float]], *, unit: str = "", width: int = 520, css: str = "chart") -> Markup:
    """Horizontal bars, one per (label, value), scaled to the largest value."""
    row = 24
    label_width = min(max((max((len(label) for label, _ in items), default=0)) * 7 + 16, 90), 330)
    width = max(width, label_width + 220)
    top = max((v for _, v in items), default=0) or 1
    height = max(len(items), 1) * row + 4
    parts = [f'<svg class="{_e(css)}" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">']
    for index, (label, value) in enumerate(items):
        y = index * row
        bar = (width - label_width - 70) * value / top
        parts.append(f'<text x="{label_width - 8}" y="{y + 16}" text-anchor="end" font-size="12" '
                     f'fill="#222222">{_e(label)}</text>')
        parts.append(f'<rect class="bar" data-label="{_e(label)}" data-value="{value:g}" x="{label_width}" '
                     f'y="{y + 4}" width="{bar:.1f}" height="{row - 8}" fill="#4e79a7"/>')
        parts.append(f'<text x="{label_width + bar + 6:.1f}" y="{y + 16}" font-size="12" '
                     f'fill="#222222">{value:g}{_e(unit)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def line(points: Sequence[tuple[str, float]], *, top: float = 100.0, width: int = 260, height: int = 60,
         css: str = "spark") -> Markup:
    """A small line over (label, value) points, e.g. one service's parity per shadow run (0..top)."""
    parts = [f'<svg class="{_e(css)}" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">',
             f'<line x1="0" y1="{height - 2}" x2="{width}" y2="{height - 2}" stroke="#bbbbbb"/>']
    if points:
        step = (width - 12) / max(len(points) - 1, 1)
        coords = [(6 + i * step, (height - 6) - (height - 12) * max(0.0, min(v, top)) / top) for i, (_, v) in
                  enumerate(points)]
        parts.append('<polyline fill="none" stroke="#f28e2b" stroke-width="2" points="'
                     + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords) + '"/>')
        for (x, y), (label, value) in zip(coords, points):
            parts.append(f'<circle class="point" data-label="{_e(label)}" data-value="{value:g}" cx="{x:.1f}" '
                         f'cy="{y:.1f}" r="3" fill="#f28e2b"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
