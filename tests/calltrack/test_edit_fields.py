"""An edit saves the fields it changes and what the model derives from them, on every database."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from lxml import html

from calltrack.numbers.models import ReceivingNumber, TrackingNumber
from calltrack.numbers.services import records
from tests.numbers.factories import ReceivingNumberFactory, TrackingNumberFactory

pytestmark = pytest.mark.django_db


def _form_data(client, url: str) -> dict[str, str]:
    doc = html.fromstring(client.get(url).content)
    form = doc.forms[-1] if len(doc.forms) > 1 else doc.forms[0]
    return dict(form.form_values())


def test_an_api_edit_of_the_number_saves_the_area_code_derived_from_it():
    tn = TrackingNumberFactory(number="+14155550123")
    records.tracking_number_update(tracking_number=TrackingNumber.objects.get(pk=tn.pk), fields={"number": "+13035550123"})
    tn.refresh_from_db()
    assert (tn.number, tn.area_code) == ("+13035550123", "303")


def test_an_admin_edit_of_the_number_saves_the_area_code_derived_from_it(admin_client):
    tn = TrackingNumberFactory(number="+14155550124")
    url = f"/admin/numbers/trackingnumber/{tn.pk}/change/"
    data = _form_data(admin_client, url)
    data["number"] = "+13035550124"
    assert admin_client.post(url, data).status_code == 302
    tn.refresh_from_db()
    assert (tn.number, tn.area_code) == ("+13035550124", "303")


def test_an_admin_edit_of_a_receiving_number_writes_only_the_changed_label(admin_client):
    rn = ReceivingNumberFactory(label="Old")
    url = f"/admin/numbers/receivingnumber/{rn.pk}/change/"
    data = _form_data(admin_client, url)
    data["label"] = "New"
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.post(url, data).status_code == 302
    update = next(q["sql"] for q in queries if q["sql"].startswith(f'UPDATE "{ReceivingNumber._meta.db_table}"'))
    assert '"label"' in update and '"ring_timeout"' not in update.split(" WHERE ")[0]
    assert ReceivingNumber.objects.get(pk=rn.pk).label == "New"
