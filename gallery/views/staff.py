"""The staff dashboard: reproduction summary, GPU time and cost."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from gallery.charts import bar_chart
from gallery.views.access import staff_refused
from generator.selectors.records import reproduction_summary
from generator.selectors.stats import render_stats


@require_safe
def staff_dashboard(request: HttpRequest) -> HttpResponse:
    if refused := staff_refused(request, what="The dashboard is"):
        return refused
    stats = render_stats(days=14)
    context = {
        "summary": reproduction_summary(),
        "stats": stats,
        "image_chart": bar_chart([(d.day, d.images) for d in stats.days], digits=0),
        "seconds_chart": bar_chart([(d.day, d.render_seconds) for d in stats.days], digits=1),
        "cost_chart": bar_chart([(d.day, d.cost_usd) for d in stats.days], digits=4),
    }
    return render(request, "staff/dashboard.html", context)
