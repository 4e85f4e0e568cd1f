"""The console's charts as SVG, drawn on the server with pygal: no JavaScript, no request
to anywhere (pygal's tooltip script and its inline configuration script are left out).

Amounts stay integers of minor units: they are plotted as they are, and the axis and value
labels are formatted back from integers with :class:`~parrain.kit.money.Money` (a tick the
chart places between two amounts is rounded to the nearest minor unit to be labelled).
Each chart comes with its numbers as a table for screen readers and for copying.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pygal
from markupsafe import Markup
from pygal.style import Style

from parrain.kit.money import Money

#: At most this many points on a burn-down; a longer history keeps the last point of each
#: of this many equal time slices (and always the first and the last point).
MAX_POINTS = 200

_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL | re.IGNORECASE)
_STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#1b1b1b",
    foreground_strong="#1b1b1b",
    foreground_subtle="#4d4d4d",
    colors=("#0b5cad", "#1d6b36", "#a4161a"),
    font_family="system-ui, sans-serif",
    label_font_size=13,
    major_label_font_size=13,
    value_font_size=13,
    title_font_size=16,
)


@dataclass(frozen=True, slots=True)
class Chart:
    """An SVG to put inline, with the title it is announced by."""

    title: str
    svg: Markup


def _config(chart: pygal.graph.graph.Graph, title: str) -> None:
    chart.config.js = []  # pygal's tooltips load a script from its website: none here
    chart.config.disable_xml_declaration = True
    chart.config.title = title
    chart.config.show_legend = False
    chart.config.style = _STYLE
    chart.config.width = 640
    chart.config.height = 320
    chart.config.explicit_size = False
    chart.config.no_data_text = "—"


def _inline(chart: pygal.graph.graph.Graph, title: str) -> Chart:
    # pygal still writes its configuration as an inline script: useless without its
    # tooltips script, and pages here run no JavaScript.
    svg = _SCRIPT.sub("", chart.render(is_unicode=True))
    # Announced as one image named by its title; the table next to it has the numbers.
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{Markup.escape(title)}" ', 1)
    return Chart(title=title, svg=Markup(svg))  # noqa: S704 - pygal escapes what it draws


def funnel_chart(stages: Sequence[tuple[str, int]], *, title: str) -> Chart:
    """Horizontal bars, one per stage (clicks, installs, signups...), in order."""
    chart = pygal.HorizontalBar(print_values=True)
    _config(chart, title)
    # pygal draws the first bar at the bottom: reversed, the first stage is on top.
    chart.config.x_labels = [label for label, _ in reversed(stages)]
    chart.config.value_formatter = lambda value: f"{int(value):,}"
    chart.add(title, [count for _, count in reversed(stages)])
    return _inline(chart, title)


Point = tuple[datetime, int]


def thin(points: Sequence[Point], limit: int = MAX_POINTS) -> list[Point]:
    """At most ``limit`` points: the last of each equal slice of time, plus the first."""
    if len(points) <= limit:
        return list(points)
    start, end = points[0][0], points[-1][0]
    span = (end - start) / (limit - 1)
    kept: dict[int, Point] = {}
    for point in points:
        kept[int((point[0] - start) / span) if span else 0] = point
    thinned = [points[0], *sorted(kept.values())]
    return sorted(dict.fromkeys(thinned))


def burn_down_chart(points: Sequence[Point], *, currency: str, locale: str, title: str) -> Chart:
    """The budget left (integer minor units) after each moment it moved."""
    chart = pygal.DateTimeLine(
        fill=True,
        show_dots=len(points) <= 40,
        x_label_rotation=30,
        include_x_axis=True,  # a burn-down starts from zero
        y_labels_major_count=5,
        show_minor_y_labels=False,
        x_labels_major_count=6,
        show_minor_x_labels=False,
    )
    _config(chart, title)
    chart.config.value_formatter = lambda value: Money(round(value), currency).format(locale)
    chart.config.x_value_formatter = lambda moment: moment.strftime("%Y-%m-%d %H:%M")
    chart.add(title, [(moment, amount) for moment, amount in thin(points)])
    return _inline(chart, title)
