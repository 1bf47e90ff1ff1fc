import pytest
from django.contrib.auth.models import Group

from common.roles import Role, user_has_role, user_roles
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_every_role_is_a_group_with_its_permissions():
    assert set(Group.objects.values_list("name", flat=True)) >= set(Role.values)
    sergeant = Group.objects.get(name=Role.CUSTODY_SERGEANT)
    codes = set(sergeant.permissions.values_list("codename", flat=True))
    assert {"view_recording", "flag_recording"} <= codes
    assert "add_camera" not in codes
    admin = Group.objects.get(name=Role.BOROUGH_ADMIN)
    assert "add_camera" in set(admin.permissions.values_list("codename", flat=True))


def test_user_roles_come_from_groups():
    user = f.user(Role.CUSTODY_SERGEANT)
    assert user_roles(user) == {Role.CUSTODY_SERGEANT}
    assert user_has_role(user, Role.CUSTODY_SERGEANT, Role.SYSTEM_ADMIN)
    assert not user_has_role(user, Role.BOROUGH_ADMIN)
