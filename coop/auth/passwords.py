"""Password hashing with Argon2id and explicit, documented parameters."""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask_babel import gettext as _

# OWASP Password Storage Cheat Sheet, first Argon2id option: m=46 MiB, t=1, p=1.
# ~60 ms per hash on one core of the reference machine. Changing these re-hashes on next login.
ARGON2_TIME_COST = 1
ARGON2_MEMORY_KIB = 46 * 1024
ARGON2_PARALLELISM = 1

_hasher = PasswordHasher(
    time_cost=ARGON2_TIME_COST,
    memory_cost=ARGON2_MEMORY_KIB,
    parallelism=ARGON2_PARALLELISM,
    hash_len=32,
    salt_len=16,
)

MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    """Return an Argon2id hash string of `password`."""
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """True when `password` matches `stored_hash`; never raises for a malformed hash."""
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with other parameters than today's."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def password_problem(password: str) -> str | None:
    """A sentence (in the interface language) saying why `password` is too weak, or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return _("密码至少需要 %(n)s 个字符", n=MIN_PASSWORD_LENGTH)
    if len(password) > 200:
        return _("密码过长（最多 200 个字符）")
    if password.isdigit() or password.isalpha():
        return _("密码需同时包含字母和数字（或符号）")
    return None
