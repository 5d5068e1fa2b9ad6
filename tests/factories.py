"""factory_boy factories for rows that tests need without rendering."""

from __future__ import annotations

import hashlib
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile

from generator.models import Image, ImageEnvironment, ModelVersion


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVersion

    name = factory.Sequence(lambda n: f"model-{n}")
    path = "/nonexistent"
    weights_digest = factory.LazyAttribute(lambda o: hashlib.sha256(o.name.encode()).hexdigest())


class ImageFactory(factory.django.DjangoModelFactory):
    """A ready record with a placeholder PNG (not rendered: for list/detail/selector tests)."""

    class Meta:
        model = Image
        skip_postgeneration_save = True  # the hook below writes its own row

    model_version = factory.SubFactory(ModelVersionFactory)
    model_name = factory.LazyAttribute(lambda o: str(o.model_version))
    model_digest = factory.LazyAttribute(lambda o: o.model_version.weights_digest)
    prompt = factory.Sequence(lambda n: f"prompt number {n}")
    seed = factory.Sequence(lambda n: n)
    scheduler = "PNDM"
    steps = 20
    guidance = 7.5
    width = 64
    height = 64
    status = Image.Status.READY
    pixel_sha256 = factory.Sequence(lambda n: hashlib.sha256(str(n).encode()).hexdigest())
    image_file = factory.LazyFunction(lambda: ContentFile(_PNG, name="placeholder.png"))

    @factory.post_generation
    def environment(image: Image, create: bool, extracted: dict[str, Any] | None, **_: Any) -> None:
        """ImageFactory(environment={...}) stores it in its own table, as a render does."""
        if create and extracted is not None:
            ImageEnvironment.objects.create(image=image, data=extracted)


def _tiny_png() -> bytes:
    import io

    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.new("RGB", (64, 64), (120, 80, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


_PNG = _tiny_png()
