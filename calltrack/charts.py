"""Small server-side SVG charts for the admin: no CDN, no JavaScript, readable without a legend hunt."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext


@dataclass(frozen=True)
class Series:
    label: str
    color: str
    values: Sequence[float]


def stacked_bars(labels: Sequence[str], series: Sequence[Series], *, title: str, width: int = 760, height: int = 220) -> SafeString:
    """A stacked bar chart, one bar per label (e.g. calls per day split by outcome)."""
    pad_left, pad_bottom, pad_top = 40, 34, 24
    n = max(len(labels), 1)
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top = max(totals + [1])
    plot_h = height - pad_bottom - pad_top
    step = (width - pad_left - 10) / n
    bar_w = max(step * 0.75, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" style="font: 11px sans-serif; background: #fff">',
        f"<title>{escape(title)}</title>",
        f'<text x="{pad_left}" y="14" font-weight="bold">{escape(title)}</text>',
    ]
    for frac in (0, 0.5, 1):
        y = pad_top + plot_h * (1 - frac)
        parts.append(f'<line x1="{pad_left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{pad_left - 4}" y="{y + 4:.1f}" text-anchor="end">{round(top * frac)}</text>')
    for i, label in enumerate(labels):
        x = pad_left + i * step + (step - bar_w) / 2
        y = pad_top + plot_h
        for s in series:
            v = s.values[i]
            if v <= 0:
                continue
            h = plot_h * v / top
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{s.color}">'
                f"<title>{escape(label)}: {escape(s.label)} {v:g}</title></rect>"
            )
        if n <= 16 or i % max(n // 10, 1) == 0:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - pad_bottom + 14}" text-anchor="middle">{escape(label)}</text>')
    lx = pad_left
    for s in series:
        parts.append(f'<rect x="{lx}" y="{height - 12}" width="10" height="10" fill="{s.color}"/>')
        parts.append(f'<text x="{lx + 14}" y="{height - 3}">{escape(s.label)}</text>')
        lx += 24 + 7 * len(s.label)
    parts.append("</svg>")
    return mark_safe("".join(parts))


def week_heatmap(grid: Sequence[Sequence[int]], *, row_labels: Sequence[str], title: str, of: int) -> SafeString:
    """7 x 24 cells (day x hour); darker = more of ``of`` (e.g. handlers open) at that hour."""
    cell_w, cell_h, pad_left, pad_top = 26, 18, 80, 34
    width = pad_left + 24 * cell_w + 10
    height = pad_top + len(grid) * cell_h + 26
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" style="font: 11px sans-serif; background: #fff">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="14" font-weight="bold">{escape(title)}</text>',
    ]
    for hour in range(0, 24, 3):
        parts.append(f'<text x="{pad_left + hour * cell_w + 2}" y="{pad_top - 6}">{hour:02d}h</text>')
    for r, row in enumerate(grid):
        y = pad_top + r * cell_h
        parts.append(f'<text x="{pad_left - 6}" y="{y + 13}" text-anchor="end">{escape(row_labels[r])}</text>')
        for hour, value in enumerate(row):
            shade = 0 if of == 0 else value / of
            color = "#eee" if value == 0 else f"rgba(34, 139, 34, {0.25 + 0.75 * shade:.2f})"
            parts.append(
                f'<rect x="{pad_left + hour * cell_w}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" fill="{color}">'
                f"<title>{escape(row_labels[r])} {hour:02d}:00: {value} of {of}</title></rect>"
            )
    legend = gettext("Darker: more handlers open (hover a cell for the count). Grey: nobody open.")
    parts.append(f'<text x="{pad_left}" y="{height - 6}">{escape(legend)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))


def figure(svg: SafeString, caption: str = "") -> SafeString:
    return format_html('<figure style="margin:0">{}<figcaption class="help">{}</figcaption></figure>', svg, caption)
