"""The browser harness itself: a real Chromium signs in through the login form."""
from __future__ import annotations

import pytest

from .conftest import login

pytestmark = pytest.mark.browser


def test_sign_in_and_see_own_name(page, org):
    login(page, "m1@test.local")
    assert "Manager One" in page.content()
    assert page.console_errors == []


def test_wrong_password_stays_on_login(page, org):
    page.goto("/login")
    page.fill("input[name=email]", "m1@test.local")
    page.fill("input[name=password]", "wrong")
    page.click("form.login button[type=submit]")
    assert "/login" in page.url
