"""Staff pages for imports: upload files, then watch the run and read its report."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from archive.selectors import (
    import_problem_reasons,
    import_problems,
    import_problems_count,
    import_run_find,
    import_runs,
)
from archive.services.imports import import_upload_start
from gallery.forms.imports import ImportUploadForm
from gallery.views.access import staff_refused

RECENT_RUNS = 20
SHOWN_PROBLEMS = 200


@require_http_methods(["GET", "HEAD", "POST"])
def staff_import(request: HttpRequest) -> HttpResponse:
    if refused := staff_refused(request, what="Imports are"):
        return refused
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        run = import_upload_start(
            files=form.cleaned_data["uploads"],
            mapping=form.cleaned_data["mapping"],
            render_missing=form.cleaned_data["render_missing"],
            user=request.user,  # type: ignore[arg-type]
        )
        return redirect("staff_import_run", run_id=run.pk)
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "runs": import_runs()[:RECENT_RUNS]}
    return render(request, "staff/import.html", context, status=status)


@require_safe
def staff_import_run(request: HttpRequest, run_id: int) -> HttpResponse:
    if refused := staff_refused(request, what="Imports are"):
        return refused
    run = import_run_find(run_id=run_id)
    if run is None:
        raise Http404("No such import")
    context = {
        "run": run,
        "problems": import_problems(run=run, limit=SHOWN_PROBLEMS),
        "problem_count": import_problems_count(run=run),
        "reasons": import_problem_reasons(run=run),
    }
    return render(request, "staff/import_run.html", context)
