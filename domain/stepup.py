"""Step-up (RFC 9470): some operations need a recent login of a given strength."""

from __future__ import annotations

from domain.errors import StepUpRequired
from domain.principals import Partner, Principal

# A login "in the future" by more than this is not a fresh login but a clock problem.
_CLOCK_SKEW = 60


def require_strong_login(
    principal: Principal, acr_values: tuple[str, ...], max_age: int, now: float | None = None
) -> None:
    """Step-up (RFC 9470 section 3): `acr` must be one of `acr_values` and the login at most
    `max_age` seconds old. A partner has no login at all, so it never passes."""
    login = principal.authentication if not isinstance(principal, Partner) else None
    age = login.age(now) if login is not None else None
    if (
        login is None
        or login.acr not in acr_values
        or age is None
        or age > max_age
        or age < -_CLOCK_SKEW
    ):
        raise StepUpRequired(acr_values, max_age)
