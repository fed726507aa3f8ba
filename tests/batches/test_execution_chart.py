"""The expansion chart is drawn by the server: accessible SVG, escaped text, no script."""

from __future__ import annotations

from decimal import Decimal as D

from batches.charts import ExpansionPoint, expansion_chart_svg


def _points():
    return [ExpansionPoint(x=float(n), viable_cells=D(cells), viability_pct=D(v), label=f"Count #{n}")
            for n, (cells, v) in enumerate([("1.4e8", "91.2"), ("2.6e8", "92.5"), ("4.9e8", "93.8")], start=1)]


def test_the_expansion_chart_is_an_accessible_svg_with_every_count():
    svg = expansion_chart_svg(_points(), viability_action_min=D("70"), title="Expansion of B-1")

    assert svg.startswith("<svg")
    assert 'role="img"' in svg
    assert "<title" in svg
    assert "<desc" in svg
    assert svg.count("<circle") == 3 + 1  # three counts and the legend
    assert "viability action limit 70 %" in svg
    assert "4.90 × 10⁸" in svg
    assert "<script" not in svg


def test_text_in_the_chart_is_escaped():
    points = [ExpansionPoint(x=1.0, viable_cells=D("1e8"), viability_pct=D("90"), label="<script>alert(1)</script>")]

    svg = expansion_chart_svg(points, title='"><script>x</script>')

    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


def test_nothing_to_plot_gives_no_chart():
    assert expansion_chart_svg([]) == ""
    assert expansion_chart_svg([ExpansionPoint(x=1.0, viable_cells=None, viability_pct=None)]) == ""


def test_the_chart_speaks_the_readers_language():
    from django.utils import translation

    with translation.override("ru"):
        svg = expansion_chart_svg(_points(), x_title="Day of culture", viability_action_min=D("70"))

    assert "Viable cells" not in svg
    assert "viability action limit" not in svg
    assert "Day of culture" not in svg
