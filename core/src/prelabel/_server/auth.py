"""Optional request authentication: HTTP basic auth (what LS's ML form sends) or a bearer token.

``/`` and ``/health`` stay open so load balancers and LS's connection check can probe them.
LS's automatic event webhooks carry no credentials (protocol §2): with auth on, add an
``Authorization: Bearer <PRELABEL_API_TOKEN>`` header to the project's webhook in LS.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from prelabel.errors import Unauthorized
from prelabel.settings import CoreSettings

__all__ = ["OPEN_PATHS", "check_authorization"]

OPEN_PATHS = frozenset({"/", "/health"})


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def check_authorization(header: str | None, settings: CoreSettings) -> None:
    """Raise :class:`Unauthorized` unless ``header`` carries valid credentials."""
    if not settings.auth_enabled:
        return
    scheme, _, credentials = (header or "").partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and settings.api_token:
        if _equal(credentials.strip(), settings.api_token):
            return
    elif scheme == "basic" and settings.basic_auth_user and settings.basic_auth_pass:
        try:
            user, _, password = (
                base64.b64decode(credentials.strip().encode("ascii"), validate=True)
                .decode()
                .partition(":")
            )
        except (binascii.Error, UnicodeError):  # not base64, not ASCII, not UTF-8 inside
            raise Unauthorized("Malformed basic-auth credentials.") from None
        # Compare both parts even if the first differs, so timing reveals nothing.
        user_ok = _equal(user, settings.basic_auth_user)
        pass_ok = _equal(password, settings.basic_auth_pass)
        if user_ok and pass_ok:
            return
    raise Unauthorized(
        "Authentication required: set the same basic-auth user and password in Label Studio's "
        "model settings, or send 'Authorization: Bearer <PRELABEL_API_TOKEN>'."
    )
