"""Charts as SVG made on the server: no script, readable without one, the figures in a table beside them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

# One colour per decision category; the table beside the chart names them too (not colour alone).
COLOURS = {
    "pass": "#2e7d32",
    "warn": "#f9a825",
    "block": "#c62828",
    "quarantine": "#6a1b9a",
    "unscannable": "#1565c0",
    "not decided": "#757575",
}
BAR_COLOUR = "#455a64"


def _svg(width: int, height: int, label: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(label)}">' + "".join(body) + "</svg>"
    )


def stacked_columns(
    days: Sequence[str], series: Mapping[str, Sequence[int]], label: str, height: int = 180
) -> Markup:
    """One column a day, its categories stacked in the order of `series`; each part titled with its figure."""
    column, gap, left, bottom, top = 14, 4, 36, 22, 8
    width = left + len(days) * (column + gap) + 4
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    peak = max(totals, default=0) or 1
    scale = (height - bottom - top) / peak
    body = [
        f'<line x1="{left - 2}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="#999"/>',
        f'<text x="{left - 6}" y="{top + 4}" font-size="10" text-anchor="end">{peak}</text>',
        f'<text x="{left - 6}" y="{height - bottom}" font-size="10" text-anchor="end">0</text>',
    ]
    for i, day in enumerate(days):
        x = left + i * (column + gap)
        y = float(height - bottom)
        for name, values in series.items():
            value = values[i]
            if not value:
                continue
            h = value * scale
            y -= h
            body.append(
                f'<rect x="{x}" y="{y:.1f}" width="{column}" height="{h:.1f}" '
                f'fill="{COLOURS.get(name, BAR_COLOUR)}"><title>{escape(day)} {escape(name)}: {value}'
                "</title></rect>"
            )
        if (len(days) - 1 - i) % 7 == 0:  # a week apart, counted back from today
            body.append(
                f'<text x="{x + column / 2}" y="{height - 6}" font-size="9" text-anchor="middle">'
                f"{escape(day[5:])}</text>"
            )
    return _svg(width, height, label, body)


def horizontal_bars(items: Sequence[tuple[str, int]], label: str, width: int = 320) -> Markup:
    """One bar per item, longest first as given; the names are in the table beside it."""
    bar, gap = 14, 6
    height = max(1, len(items)) * (bar + gap) + gap
    peak = max((n for _, n in items), default=0) or 1
    room = width - 50
    body = []
    for i, (name, value) in enumerate(items):
        y = gap + i * (bar + gap)
        w = max(1.0, value / peak * room)
        body.append(
            f'<rect x="0" y="{y}" width="{w:.1f}" height="{bar}" fill="{BAR_COLOUR}">'
            f"<title>{escape(name)}: {value}</title></rect>"
            f'<text x="{w + 4:.1f}" y="{y + bar - 3}" font-size="10">{value}</text>'
        )
    return _svg(width, height, label, body)
