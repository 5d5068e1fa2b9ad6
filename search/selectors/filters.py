"""Search filters: the form's fields and the search box's (engine.search_query) as a queryset
filter over records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.lookups import DataContains
from django.db.models import (
    BooleanField,
    F,
    Func,
    Q,
    QuerySet,
    TextField,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import JSONObject
from django.utils import timezone

from engine.keywords import segment
from engine.search_query import CHINESE_CHARACTERS, SHA256_PREFIX
from generator.models import LORA_HEAD_LENGTH, Image, LoraHeads
from search.selectors.keyword import KEYWORD_TSQUERY


def _day_start(day: date) -> datetime:
    """Midnight starting `day` in the site's time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


@dataclass(frozen=True)
class SearchFilters:
    model: str = ""
    scheduler: str = ""
    width: int | None = None
    height: int | None = None
    seed: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    # Restrict to these records: a subquery of image ids the caller builds (the gallery's
    # collections), so search needs to know nothing about what a collection is.
    within: QuerySet[Any] | None = None
    nsfw: str = "include"  # include | exclude | only
    # From the search box's filters (engine.search_query): (lookup, number) comparisons,
    # the owner's username, LoRA names or sha256 prefixes (all used), the prompt's language
    # ("zh": it has Chinese characters), a bit-identical reproduction, and words or phrases
    # the prompt must hold (phrases) or must not (excluded).
    steps: tuple[tuple[str, int], ...] = ()
    guidance: tuple[tuple[str, float], ...] = ()
    user: str = ""
    loras: tuple[str, ...] = ()
    lang: str = ""
    verified: bool | None = None
    phrases: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    def apply(self, images: QuerySet[Image]) -> QuerySet[Image]:
        images = self._apply_query_fields(images)
        if self.model:
            images = images.filter(model_name=self.model)
        if self.scheduler:
            images = images.filter(scheduler=self.scheduler)
        if self.width:
            images = images.filter(width=self.width)
        if self.height:
            images = images.filter(height=self.height)
        if self.seed is not None:
            images = images.filter(seed=self.seed)
        # As a range of instants, not created_at::date: a range can use an index.
        if self.date_from:
            images = images.filter(created_at__gte=_day_start(self.date_from))
        if self.date_to:
            images = images.filter(created_at__lt=_day_start(self.date_to + timedelta(days=1)))
        if self.within is not None:
            images = images.filter(pk__in=self.within)
        if self.nsfw == "exclude":
            images = images.filter(nsfw=False)
        elif self.nsfw == "only":
            images = images.filter(nsfw=True)
        return images

    def _apply_query_fields(self, images: QuerySet[Image]) -> QuerySet[Image]:
        for lookup, steps in self.steps:
            images = images.filter(**{f"steps__{lookup}": steps})
        for lookup, guidance in self.guidance:
            images = images.filter(**{f"guidance__{lookup}": guidance})
        if self.user:
            images = images.filter(owner__username=self.user)
        for lora in self.loras:
            images = images.filter(_lora_used(lora))
        if self.lang == "zh":
            images = images.filter(prompt__regex=CHINESE_CHARACTERS)
        elif self.lang == "en":
            images = images.exclude(prompt__regex=CHINESE_CHARACTERS)
        if self.verified is not None:
            # The record's own column (kept by a trigger on the reproductions): verified:true
            # reads its partial index with the sketches, verified:false is checked on each
            # record the graph walk reaches.
            images = images.filter(verified=self.verified)
        for phrase in self.phrases:
            # The GIN index finds records with the phrase anywhere in their recipe's text;
            # ts_filter keeps those that have it in the prompt (weight A), not the negative.
            terms = (phrase, segment(phrase), phrase, segment(phrase))
            images = images.filter(
                RawSQL(
                    f"search_vector @@ {_PHRASE} "
                    f"AND ts_filter(search_vector, '{{a}}') @@ {_PHRASE}",
                    terms,
                    output_field=BooleanField(),
                )
            )
        for word in self.excluded:
            # Records never indexed (search_vector NULL) hold no word: kept, not dropped.
            images = images.filter(
                RawSQL(
                    f"NOT coalesce(ts_filter(search_vector, '{{a}}') @@ {KEYWORD_TSQUERY}, false)",
                    (word, segment(word)),
                    output_field=BooleanField(),
                )
            )
        return images

    @property
    def active(self) -> bool:
        return self != SearchFilters()

    @property
    def chinese_prompts(self) -> bool:
        """lang:zh: the vector search walks the Chinese prompts' own graph."""
        return self.lang == "zh"


# A phrase: its words in order, English stems or segmented words (Chinese).
_PHRASE = (
    "(phraseto_tsquery('english'::regconfig, %s) || phraseto_tsquery('simple'::regconfig, %s))"
)


def _lora_used(lora: str) -> Q:
    """Records whose recipe uses a LoRA of that name, or whose sha256 starts with that hex.
    Each half has its own index (public_loras, public_lora_heads), so the two are read as one
    bitmap: the head finds the few records using LoRAs whose digests start alike, the full
    prefix is checked on just those."""
    named = Q(loras__contains=[{"name": lora}])
    if not SHA256_PREFIX.fullmatch(lora):
        return named
    head = DataContains(
        LoraHeads(F("loras")),
        Value([lora[:LORA_HEAD_LENGTH]], output_field=ArrayField(TextField())),
    )
    prefixed = Func(
        F("loras"),
        Value("$[*] ? (@.resource starts with $prefix)"),
        JSONObject(prefix=Value(lora)),
        template="jsonb_path_exists(%(expressions)s)",
        output_field=BooleanField(),
    )
    return named | (Q(head) & Q(prefixed))
