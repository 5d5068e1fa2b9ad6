"""Remix: rerun a record's recipe unchanged (a reproduction) or with edits (a linked child)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from gallery import ratelimit
from gallery.forms.recipe import RecipeForm
from gallery.services import remix_submit
from gallery.views.generate import init_source, submit_recipe
from generator.selectors.model_versions import image_model_problem
from generator.selectors.records import image_detail


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def remix(request: HttpRequest, image_id: int) -> HttpResponse:
    image = image_detail(image_id=image_id, viewer=request.user)
    if image is None:
        raise Http404("No such image")
    if request.method == "POST":
        if refused := ratelimit.generation_refused(request):
            return refused
        form = RecipeForm(request.POST, request.FILES, viewer=request.user)
        if form.is_valid():
            submitted = submit_recipe(
                request,
                form,
                lambda recipe: remix_submit(owner=request.user, parent=image, recipe=recipe),  # type: ignore[arg-type]
            )
            if submitted is not None:
                return submitted
        status = 400
    else:
        form = RecipeForm(initial=RecipeForm.initial_from_image(image), viewer=request.user)
        status = 200
    context = {
        "form": form,
        "image": image,
        "model_problem": image_model_problem(image=image),
        "init_source": init_source(form, request.user),
    }
    return render(request, "gallery/remix.html", context, status=status)
