"""Admins cannot lock the platform out: no admin deactivates itself, the last active admin stays, and
two admins deactivating each other at once never leave none (row locks; real threads on PostgreSQL)."""

import threading

import pytest

from models import RefreshToken, Role, User
from models.actions import accounts
from models.foundation.errors import Conflict

from .factories import AdminFactory


def active_admins():
    return User.select().where(User.role == Role.ADMIN, User.is_active == True).count()


@pytest.mark.gen_test
async def test_an_admin_cannot_deactivate_itself(api, admin_user):
    AdminFactory()  # not the last one: the refusal is about oneself
    login = await api.post("/api/auth/login/", {"email": admin_user.email, "password": "correct-horse-battery"})

    response = await api.post(f"/api/admin/users/{admin_user.id}/deactivate/", user=admin_user)

    assert response.status == 409 and response.error_code == "cannot_deactivate_self", response
    assert "another admin" in response.data["error"]["message"]
    assert User.get_by_id(admin_user.id).is_active
    assert (await api.post("/api/auth/refresh/", {"refresh": login.data["refresh"]})).status == 200


@pytest.mark.gen_test
async def test_an_admin_deactivates_another_while_one_remains(api, admin_user):
    other = AdminFactory()

    response = await api.post(f"/api/admin/users/{other.id}/deactivate/", user=admin_user)

    assert response.status == 200 and response.data["is_active"] is False
    assert active_admins() == 1


def test_the_last_active_admin_cannot_be_deactivated(admin_user):
    # B's request was signed in before A deactivated B; it must not take A, the last one, with it.
    b = AdminFactory()
    accounts.deactivate_user(None, admin_user, b.id)

    with pytest.raises(Conflict) as refused:
        accounts.deactivate_user(None, b, admin_user.id)

    assert refused.value.code == "last_admin" and refused.value.status == 409
    assert User.get_by_id(admin_user.id).is_active and active_admins() == 1


def test_deactivating_an_inactive_admin_again_is_harmless(admin_user):
    gone = AdminFactory(is_active=False)
    assert accounts.deactivate_user(None, admin_user, gone.id).is_active is False
    assert active_admins() == 1


def test_two_admins_deactivating_each_other_at_once_leave_one(database):
    # The round's barrier and outcomes are passed in, not read from the loop's variables.
    def deactivate(actor, target, start, outcomes):
        with database.connection_context():
            start.wait()
            try:
                accounts.deactivate_user(None, actor, target.id)
                outcomes[actor.id] = "done"
            except Conflict as exc:
                outcomes[actor.id] = exc.code

    for _ in range(10):
        User.delete().execute()
        a, b = AdminFactory(), AdminFactory()
        start = threading.Barrier(2)
        outcomes = {}
        threads = [threading.Thread(target=deactivate, args=(*pair, start, outcomes)) for pair in ((a, b), (b, a))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

        assert sorted(outcomes.values()) == ["done", "last_admin"], outcomes
        assert active_admins() == 1
    RefreshToken.delete().execute()
