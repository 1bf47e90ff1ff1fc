import pytest

from devices.selectors import dock_authenticate
from devices.services import dock_register
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_every_issued_key_authenticates_whatever_characters_its_secret_has():
    admin = f.user("borough_admin")
    keys = [
        dock_register(borough=f.borough(), station="S", name=f"D{i}", actor=admin)
        for i in range(40)
    ]
    # url-safe secrets contain "_" and "-" often enough that 40 keys cover both.
    assert any("_" in key.split("_", 2)[2] for _dock, key in keys)
    for dock, key in keys:
        assert dock_authenticate(key=key) == dock


def test_the_key_is_stored_only_as_a_hash():
    admin = f.user("borough_admin")
    dock, key = dock_register(borough=f.borough(), station="S", name="D", actor=admin)
    dock.refresh_from_db()
    secret = key.split("_", 2)[2]
    assert secret not in dock.key_hash and key not in dock.key_hash


@pytest.mark.parametrize("key", ["", "bwvdock_", "bwvdock_x_y", "other_abc_def", "bwvdock__"])
def test_malformed_keys_do_not_authenticate(key):
    assert dock_authenticate(key=key) is None


def test_a_key_with_the_right_id_and_a_wrong_secret_is_refused():
    admin = f.user("borough_admin")
    dock, key = dock_register(borough=f.borough(), station="S", name="D", actor=admin)
    prefix, key_id, secret = key.split("_", 2)
    assert dock_authenticate(key=f"{prefix}_{key_id}_{secret[:-1]}x") is None
