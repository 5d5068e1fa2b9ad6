"""Create the demo staff user and, on an empty gallery, queue the demo renders."""

import os

from django.core.management.base import BaseCommand, CommandError, CommandParser

from engine.recipe import Recipe
from engine.schedulers import SCHEDULERS
from gallery.demo import DEMO_PROMPTS
from gallery.services import staff_user_ensure
from generator.management.progress import wait_with_progress
from generator.models import ModelVersion
from generator.selectors.jobs import jobs_failed_count, jobs_finished
from generator.selectors.model_versions import model_versions_named
from generator.selectors.recipes import model_version_default
from generator.selectors.records import images_any_exist
from generator.services.render_jobs import render_job_create

DEMO_USERNAME = "demo"
DEMO_SCHEDULERS = [name for name in ("PNDM", "DDIM", "K-LMS") if name in SCHEDULERS]
# Re-rendered with the fine-tune and the blend (build_tiny_models), same prompt, seed and
# scheduler as the base render: side by side they show that the model is part of the recipe.
DEMO_MODEL_NAMES = ("tiny-sd-finetune", "tiny-sd-blend-0.5")
DEMO_MODEL_PROMPT_INDEXES = (0, 2)


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
            return
        model_version = model_version_default()
        if model_version is None:
            raise CommandError("No default model version: run `manage.py build_tiny_models`.")
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

    def _wait(self, job_ids: list[int], timeout: float) -> None:
        wait_with_progress(
            finished=jobs_finished(ids=job_ids),
            total=len(job_ids),
            desc="demo renders",
            unit="image",
            timeout=timeout,
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
        steps=20,
        width=model_version.native_width,
        height=model_version.native_height,
    )
