"""The console's SVG charts: self-contained, labelled, amounts formatted from integers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from parrain.web.charts import MAX_POINTS, burn_down_chart, funnel_chart, thin

START = datetime(2026, 3, 1, 9, tzinfo=UTC)
_URL = re.compile(r"https?://[^\"'\s<>]+")


def _external(svg: str) -> set[str]:
    """Addresses in the SVG other than XML namespaces and pygal's credit comment."""
    return {
        url
        for url in _URL.findall(svg)
        if not url.startswith(("http://www.w3.org/", "http://pygal.org", "http://github.com/Kozea"))
    }


def test_the_funnel_is_one_labelled_image_without_scripts() -> None:
    chart = funnel_chart(
        [("Clicks", 1_200), ("Installs", 800), ("Signups", 40)], title='Funnel <"Spring">'
    )
    svg = str(chart.svg)
    assert svg.startswith("<svg")
    assert 'role="img"' in svg
    assert 'aria-label="Funnel &lt;&#34;Spring&#34;&gt;"' in svg
    assert "<script" not in svg.lower()
    assert _external(svg) == set()
    assert "1,200" in svg  # the values are printed on the bars
    # The first stage is drawn on top: pygal lists the labels bottom-up.
    assert svg.index(">Signups<") < svg.index(">Installs<") < svg.index(">Clicks<")


def test_the_burn_down_labels_amounts_in_the_currency_and_language() -> None:
    points = [(START + timedelta(days=day), 500_000 - day * 12_345) for day in range(10)]
    english = str(burn_down_chart(points, currency="GBP", locale="en_GB", title="Budget left").svg)
    assert "£0.00" in english  # the axis starts from zero
    assert "<script" not in english.lower()
    assert _external(english) == set()
    french = str(burn_down_chart(points, currency="EUR", locale="fr_FR", title="Budget").svg)
    assert re.search(r"0,00\s€", french)


def test_a_long_history_is_thinned_keeping_both_ends() -> None:
    points = [(START + timedelta(minutes=minute), minute) for minute in range(5_000)]
    kept = thin(points)
    assert len(kept) <= MAX_POINTS + 1
    assert kept[0] == points[0]
    assert kept[-1] == points[-1]
    assert kept == sorted(kept)
    assert thin(points[:10]) == points[:10]
