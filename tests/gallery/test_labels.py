"""Codes and bare layouts people should not have to read: the diff page's mode in words, the
search filters' labels in Chinese, the staff import form in the site's layout, and the admin's
record list with a picture per row (escaped)."""

from __future__ import annotations

import pytest
from django.test import Client

from gallery.templatetags.labels import VERDICT_LABELS, mode_label, verdict_label
from generator.models import Reproduction
from tests.config.test_translations import ZH, compiled_catalogue  # noqa: F401 (a fixture)
from tests.factories import ImageFactory

pytestmark = pytest.mark.django_db


def test_every_verdict_has_a_label_and_a_mode_its_words(english) -> None:
    assert set(VERDICT_LABELS) == set(Reproduction.Verdict.values)
    assert verdict_label("visually-identical") == "visually identical"
    assert verdict_label("something new") == "something new"
    assert mode_label("txt2img") == "text to image"
    assert mode_label("inpaint") == "inpainting"
    assert mode_label("—") == "—"


@pytest.mark.usefixtures("compiled_catalogue")
def test_the_diff_page_names_the_mode_in_the_readers_language(media_root) -> None:
    before = ImageFactory(prompt="a red fox")
    after = ImageFactory(prompt="a blue fox", model_version=before.model_version)
    url = f"/images/{before.pk}/diff/{after.pk}/"
    english = Client().get(url).content.decode()
    row = english.split('data-field="mode"')[1].split("</tr>")[0]
    assert row.count("<td>text to image</td>") == 2 and "txt2img" not in row
    chinese = Client().get(url, **ZH).content.decode()
    row = chinese.split('data-field="mode"')[1].split("</tr>")[0]
    assert row.count("<td>文生图</td>") == 2


@pytest.mark.usefixtures("compiled_catalogue")
def test_the_search_filters_are_labelled_in_chinese() -> None:
    html = Client().get("/search/", **ZH).content.decode()
    filters = html.split('class="filters"')[1].split("</details>")[0]
    for label in ("模型", "调度器", "宽度", "高度", "种子", "创建日期不早于", "合集", "NSFW"):
        assert f"<label>{label} " in filters, label
    for english in ("Model", "Scheduler", "Width", "Date from", "Collection"):
        assert f"<label>{english} " not in filters
    # Django's own catalogue would end the search box's label with an ASCII colon.
    assert "搜索：</label>" in html and "搜索:</label>" not in html


@pytest.mark.usefixtures("compiled_catalogue")
def test_the_staff_import_form_uses_the_sites_layout(client, staff_user) -> None:
    client.force_login(staff_user)
    html = client.get("/staff/import/", **ZH).content.decode()
    form = html.split('data-testid="import-form"')[1].split("</form>")[0]
    assert form.count('<div class="field field-') == 3  # files, mapping, render_missing
    assert 'id="id_uploads_helptext"' in form and 'aria-describedby="id_uploads_helptext"' in form
    assert "文件：</label>" in form  # full-width colon in Chinese


def test_the_admin_record_list_shows_each_records_picture_escaped(
    client, django_user_model, media_root
) -> None:
    admin = django_user_model.objects.create_superuser("root", password="pw-for-tests-3")
    image = ImageFactory(prompt='a fox "><script>alert(1)</script>')
    client.force_login(admin)
    html = client.get("/admin/generator/image/").content.decode()
    assert f'<img src="{image.grid_src}"' in html
    assert 'alt="a fox &quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html
    assert "<script>alert(1)" not in html
    assert "column-preview" in html


@pytest.mark.usefixtures("compiled_catalogue")
def test_the_lineage_names_the_mode_in_the_readers_language(media_root) -> None:
    root = ImageFactory(prompt="a red fox")
    child = ImageFactory(prompt="a red fox", model_version=root.model_version, parent=root,
                         mode="img2img", strength=0.6)  # fmt: skip
    url = f"/images/{child.pk}/"
    english = Client().get(url).content.decode()
    edge = english.split('data-testid="lineage-edge"')[1].split("</span>\n")[0]
    assert "Mode text to image → image to image" in " ".join(edge.split())
    assert "txt2img" not in edge and "img2img" not in edge
    chinese = Client().get(url, **ZH).content.decode()
    edge = chinese.split('data-testid="lineage-edge"')[1].split("</span>\n")[0]
    assert "文生图 → 图生图" in edge and "txt2img" not in edge
