"""The admin session cookie: after unlocking /review with the admin token, the browser holds an
HttpOnly cookie instead of the token, so no script on the page (the app's own or any other) can
read a credential. The cookie is signed with the token: changing the token ends every session."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

COOKIE = "playbook_admin"
# Cookie-authenticated requests must also carry this header: a cross-site form cannot set it
# (defence in depth beside SameSite=Strict).
CSRF_HEADER = "X-Playbook-Admin"
LIFETIME_SECONDS = 12 * 3600


def _signature(admin_token: str, issued: int) -> str:
    message = f"admin-session:{issued}".encode()
    return hmac.new(admin_token.encode(), message, hashlib.sha256).hexdigest()


def issue(admin_token: str, clock: Callable[[], float] = time.time) -> str:
    issued = int(clock())
    return f"{issued}.{_signature(admin_token, issued)}"


def valid(cookie: str, admin_token: str, clock: Callable[[], float] = time.time) -> bool:
    issued_text, _, signature = cookie.partition(".")
    if not issued_text.isdigit() or len(issued_text) > 12:
        return False
    issued = int(issued_text)
    if not 0 <= clock() - issued <= LIFETIME_SECONDS:
        return False
    return hmac.compare_digest(signature.encode(), _signature(admin_token, issued).encode())
