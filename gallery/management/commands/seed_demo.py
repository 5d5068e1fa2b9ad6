"""Create the demo staff user and, on an empty gallery, queue the demo renders: the demo
prompts with the default model, some of them again with the fine-tune and the blend, and, once
their parents exist, remixes that change one word. Then the demo's featured collections, each
made once, when its records are rendered (a later run makes the ones still waiting)."""

import os
from dataclasses import replace
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from engine.recipe import A1111_WEIGHTING, Hires, LoraUse, Recipe, ResourceUse
from engine.schedulers import SCHEDULERS
from engine.training.shipped import GUIDANCE
from gallery.demo import (
    DEMO_COLLECTIONS,
    DEMO_MODEL_PROMPT_INDEXES,
    DEMO_PROMPTS,
    DEMO_RECIPE_CHAINS,
    DEMO_REMIX_PROMPTS,
    DEMO_REMIXES,
)
from gallery.selectors import images_with_prompts
from gallery.services import collection_ensure, remix_submit, staff_user_ensure
from generator.management.commands.demo_models import (
    SCENES_BLEND_NAME,
    SCENES_LORA_NAME,
    SCENES_OUTLINE_NAME,
)
from generator.management.progress import render_jobs_description, wait_with_progress
from generator.models import Image, ModelVersion, RenderJob
from generator.selectors.jobs import job_images, jobs_failed_count, jobs_finished
from generator.selectors.model_versions import model_versions_named
from generator.selectors.recipes import model_version_default
from generator.selectors.records import images_any_exist
from generator.selectors.resources import resource_resolve
from generator.services.render_jobs import render_job_create

DEMO_USERNAME = "demo"
DEMO_SCHEDULERS = [
    name for name in ("PNDM", "DDIM", "K-LMS", "Euler a", "DPM++ 2M") if name in SCHEDULERS
]
# How every demo recipe samples: 20 steps at the scene models' own guidance, not SD's 7.5.
DEMO_SAMPLING: dict[str, Any] = {"steps": 20, "guidance": GUIDANCE}
# Re-rendered with the fine-tune and the blend (demo_models), same prompt, seed and scheduler
# as the base render: side by side they show that the model is part of the recipe.
DEMO_MODEL_NAMES = (SCENES_OUTLINE_NAME, SCENES_BLEND_NAME)


def demo_password() -> str:
    return os.environ.get("SEEDBANK_DEMO_PASSWORD", "seedbank-demo")


class Command(BaseCommand):
    help = "Create the demo staff user; on an empty gallery, render the demo recipes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--wait", action="store_true", help="wait for the renders (progress)")
        parser.add_argument("--timeout", type=float, default=600.0)

    def handle(self, *args: object, wait: bool, timeout: float, **options: object) -> None:
        user = staff_user_ensure(username=DEMO_USERNAME, password=demo_password())
        if images_any_exist():
            self.stdout.write("Gallery already has images; no demo renders queued.")
            self._collections(user)
            return
        model_version = model_version_default()
        if model_version is None:
            raise CommandError("No default model version: run `manage.py demo_models`.")
        jobs = [
            render_job_create(owner=user, recipe=_demo_recipe(model_version, index))
            for index in range(len(DEMO_PROMPTS))
        ]
        other_models = model_versions_named(names=DEMO_MODEL_NAMES)
        jobs += [
            render_job_create(owner=user, recipe=_demo_recipe(other, index))
            for other in other_models
            for index in DEMO_MODEL_PROMPT_INDEXES
        ]
        self.stdout.write(f"Queued {len(jobs)} demo renders.")
        if wait:
            self._wait([job.pk for job in jobs], timeout)
        # A remix needs its parent record: there once the first renders are done (at once
        # when tasks run eagerly), else left out with a word on how to add them.
        remixes = [job for job in _remixes(user, jobs) if job is not None]
        if len(remixes) < len(DEMO_REMIXES):
            self.stdout.write(
                "Some remixes left out: their parents were not rendered yet "
                "(seed_demo --wait, as `make run` does, renders them first)."
            )
        if remixes:
            self.stdout.write(f"Queued {len(remixes)} demo remixes.")
            if wait:
                self._wait([job.pk for job in remixes], timeout)
        self._chains(user, jobs, wait=wait, timeout=timeout)
        self._collections(user)

    def _collections(self, user: Any) -> None:
        """DEMO_COLLECTIONS from the demo user's records: each made once (by slug), never
        while one of its records is still rendering, and never with fewer than two."""
        records = images_with_prompts(owner=user, prompts=[*DEMO_PROMPTS, *DEMO_REMIX_PROMPTS])
        made = 0
        for position, spec in enumerate(DEMO_COLLECTIONS):
            picked = spec.pick(records)
            if any(record.status == Image.Status.PENDING for record in picked):
                continue
            shown = [record for record in picked if not record.hidden]
            if len(shown) < 2:
                continue
            _collection, created = collection_ensure(
                actor=user,
                slug=spec.slug,
                title=spec.title,
                description=spec.description,
                images=shown,
                public=True,
                featured=True,
                position=position,
            )
            made += created
        if made:
            self.stdout.write(f"Made {made} featured demo collections.")

    def _chains(self, user: Any, jobs: list[RenderJob], *, wait: bool, timeout: float) -> None:
        """DEMO_RECIPE_CHAINS, one generation at a time (each needs its parent rendered)."""
        parents = {chain: jobs[index] for chain, (index, _) in enumerate(DEMO_RECIPE_CHAINS)}
        for generation in range(max(len(steps) for _, steps in DEMO_RECIPE_CHAINS)):
            queued = {}
            for chain, (_, steps) in enumerate(DEMO_RECIPE_CHAINS):
                parent_job = parents.get(chain)
                if generation >= len(steps) or parent_job is None:
                    continue
                parent = next(iter(job_images(job=parent_job)), None)
                if parent is None or not parent.image_file:
                    parents.pop(chain)  # not rendered (no --wait): the rest of it waits too
                    continue
                recipe = _changed(parent.recipe(), steps[generation])
                queued[chain] = remix_submit(owner=user, parent=parent, recipe=recipe)  # type: ignore[arg-type]
            if not queued:
                return
            self.stdout.write(f"Queued {len(queued)} demo remixes of LoRAs, VAEs and settings.")
            parents.update(queued)
            if wait:
                self._wait([job.pk for job in queued.values()], timeout)

    def _wait(self, job_ids: list[int], timeout: float) -> None:
        wait_with_progress(
            finished=jobs_finished(ids=job_ids),
            total=len(job_ids),
            desc="demo renders",
            unit="image",
            timeout=timeout,
            describe=render_jobs_description(ids=job_ids, what="demo"),
        )
        failed = jobs_failed_count(ids=job_ids)
        if failed:
            raise CommandError(f"{failed} demo renders failed; see the admin's render jobs.")


def _demo_recipe(model_version: ModelVersion, index: int) -> Recipe:
    # Seed and scheduler follow the prompt, not the model, so one prompt rendered with several
    # models differs only by the model.
    return Recipe(
        model_version_id=model_version.pk,
        prompt=DEMO_PROMPTS[index],
        seed=1000 + index,
        scheduler=DEMO_SCHEDULERS[index % len(DEMO_SCHEDULERS)],
        width=model_version.native_width,
        height=model_version.native_height,
        **DEMO_SAMPLING,
    )


def _changed(recipe: Recipe, change: dict[str, Any]) -> Recipe:
    """A demo chain's step applied to a recipe (resources by their shipped names)."""
    if "lora" in change:
        lora = resource_resolve(kind="lora", ref=SCENES_LORA_NAME)
        if lora is None:
            raise CommandError(f"No {SCENES_LORA_NAME}: run `manage.py demo_models`.")
        use = LoraUse(resource=lora.sha256, weight=change["lora"], name=str(lora))
        return replace(recipe, loras=(use,))
    if "vae" in change:
        vae = resource_resolve(kind="vae", ref=change["vae"])
        if vae is None:
            raise CommandError(f"No {change['vae']}: run `manage.py demo_models`.")
        return replace(recipe, vae=ResourceUse(resource=vae.sha256, name=str(vae)))
    if "words" in change:  # a word that names an embedding: it is found when submitted
        word, replacement = change["words"]
        return replace(recipe, prompt=recipe.prompt.replace(word, replacement))
    if "emphasis" in change:
        word, weighted = change["emphasis"]
        prompt = recipe.prompt.replace(word, weighted)
        return replace(recipe, prompt=prompt, prompt_weighting=A1111_WEIGHTING)
    if "hires" in change:
        return replace(recipe, hires=Hires(**change["hires"]))
    return replace(recipe, **change)


def _remixes(user: object, jobs: list[RenderJob]) -> list[RenderJob | None]:
    """Each DEMO_REMIXES entry as a remix of the first render of its prompt, if it exists."""
    made = []
    for index, word, replacement in DEMO_REMIXES:
        parent = next(iter(job_images(job=jobs[index])), None)
        if parent is None or not parent.image_file:
            made.append(None)
            continue
        recipe = replace(parent.recipe(), prompt=parent.prompt.replace(word, replacement))
        made.append(remix_submit(owner=user, parent=parent, recipe=recipe))  # type: ignore[arg-type]
    return made
