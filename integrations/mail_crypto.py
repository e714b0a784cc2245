"""Mailbox passwords at rest: Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``).

The key is ``MAIL_KEY`` (env ``MARSHRUT_MAIL_KEY``) when set — a Fernet key, or any
passphrase — else derived from the app's secret key. Either way it goes through HKDF-SHA256
with its own label, so the cookie-signing secret itself never encrypts anything. Changing the
key makes stored passwords unreadable: they must be entered again (``decrypt`` says so).
"""
from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class PasswordUnreadable(ValueError):
    """The stored password was encrypted with another key."""


class PasswordBox:
    def __init__(self, secret: str | bytes) -> None:
        raw = secret.encode() if isinstance(secret, str) else secret
        if not raw:
            raise ValueError("the mail key (or the secret key) is empty")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"marshrut-mail",
                   info=b"mailbox passwords v1").derive(raw)
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def encrypt(self, password: str) -> str:
        return self._fernet.encrypt(password.encode("utf-8")).decode("ascii") if password else ""

    def decrypt(self, token: str) -> str:
        if not token:
            return ""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise PasswordUnreadable("the stored password cannot be decrypted with the current "
                                     "key; enter the password again") from exc
