"""The admin session cookie: after unlocking an admin page with a token, the browser holds an
HttpOnly cookie instead of the token, so no script on the page (the app's own or any other) can
read a credential. The cookie names the admin and is signed with their token: changing the
token ends their sessions."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping

COOKIE = "playbook_admin"
# Cookie-authenticated requests must also carry this header: a cross-site form cannot set it
# (defence in depth beside SameSite=Strict).
CSRF_HEADER = "X-Playbook-Admin"
LIFETIME_SECONDS = 12 * 3600
_COOKIE = re.compile(r"^(?P<issued>\d{1,12})\.(?P<name>[0-9a-f]{0,200})\.(?P<signature>[0-9a-f]{64})$")


def _signature(token: str, name: str, issued: int) -> str:
    message = f"admin-session:{name}:{issued}".encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def issue(token: str, name: str, clock: Callable[[], float] = time.time) -> str:
    issued = int(clock())
    return f"{issued}.{name.encode().hex()}.{_signature(token, name, issued)}"


def admin_of(cookie: str, tokens: Mapping[str, str],
             clock: Callable[[], float] = time.time) -> str | None:
    """The admin's name if the cookie is live and signed with that admin's current token."""
    match = _COOKIE.match(cookie)
    if match is None:
        return None
    issued = int(match["issued"])
    if not 0 <= clock() - issued <= LIFETIME_SECONDS:
        return None
    try:
        name = bytes.fromhex(match["name"]).decode()
    except ValueError:
        return None
    for token, holder in tokens.items():
        if holder == name and hmac.compare_digest(
                match["signature"].encode(), _signature(token, name, issued).encode()):
            return name
    return None
