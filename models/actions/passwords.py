"""The one password rule: registration, admin creation, `createadmin`, change and reset all apply it.

The common-password list (common-passwords.txt.gz beside this file) is the one Django ships
(BSD-3-Clause, Django Software Foundation): Royce Williams' 20,000 commonest leaked passwords,
lowercased and deduplicated, most common first
(https://gist.github.com/roycewilliams/226886fd01572964e1431ac8afc999ce).
"""

import functools
import gzip
from pathlib import Path

from models.foundation.errors import ValidationFailed

MIN_LENGTH = 8
MAX_LENGTH = 128
BCRYPT_MAX_BYTES = 72  # bcrypt reads no further: a longer password would be silently truncated
COMMON_PASSWORDS = Path(__file__).with_name("common-passwords.txt.gz")


@functools.cache
def common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())


def password_is_email(password: str, email: str | None) -> bool:
    if not email or not password:
        return False
    guess = password.strip().lower()
    email = email.strip().lower()
    return guess in (email, email.partition("@")[0])


def password_problems(password: str, email: str | None = None) -> list[str]:
    """What is wrong with `password` (for the account `email`), as messages for the user; [] if fine."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"Must be at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        problems.append(f"Must be at most {MAX_LENGTH} characters.")
    if len(password.encode("utf-8", "surrogatepass")) > BCRYPT_MAX_BYTES:
        problems.append(
            f"Must be at most {BCRYPT_MAX_BYTES} bytes in UTF-8 (fewer characters for accented letters or emoji)."
        )
    if not password.strip():
        problems.append("Must not be only spaces.")
    elif password.strip().lower() in common_passwords():
        problems.append("This is one of the most common passwords; choose one that is harder to guess.")
    if password_is_email(password, email):
        problems.append("Must not be your email address or its name part.")
    return problems


def require_acceptable_password(password: str, email: str | None = None, field: str = "password") -> None:
    """Raise 422 on `field` when the password breaks the rule (for callers with no schema: the CLI)."""
    problems = password_problems(password, email)
    if problems:
        raise ValidationFailed(problems[0], fields={field: problems})
