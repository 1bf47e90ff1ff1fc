import pytest

from devices.models import Borough

pytestmark = pytest.mark.django_db


def test_all_32_london_boroughs_load_with_unique_codes():
    boroughs = Borough.objects.all()
    assert boroughs.count() == 32
    assert len({b.code for b in boroughs}) == 32
    assert Borough.objects.get(code="QA").name == "Harrow"
    assert Borough.objects.get(code="EK").name == "Camden"
    assert Borough.objects.filter(name="Westminster").exists()


def test_more_boroughs_can_be_added():
    Borough.objects.create(code="XX", name="City of Testing")
    assert Borough.objects.count() == 33
