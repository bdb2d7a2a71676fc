"""The people of the demo story.

The dev sign-in proxy offers these on its sign-in page and puts their claims in the
assertions it mints; ``seed_demo`` uses the same list so the seeded requests, approvers
and auditors line up with who you can sign in as.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoIdentity:
    """One sign-in choice: the claims Pomerium would assert for this person."""

    key: str
    sub: str
    email: str
    name: str
    groups: tuple[str, ...]
    role_blurb: str

    @property
    def slack_id(self) -> str:
        """Their member id in the demo's Slack stand-in (same email as here)."""
        return "U0" + self.key.upper()

    def claims(self) -> dict[str, object]:
        """The identity part of a Pomerium assertion (``sub`` and ``user`` carry the same id)."""
        return {
            "sub": self.sub,
            "user": self.sub,
            "email": self.email,
            "groups": list(self.groups),
            "name": self.name,
        }


def _identity(key: str, name: str, groups: tuple[str, ...], blurb: str) -> DemoIdentity:
    return DemoIdentity(
        key=key,
        sub=f"demo|{key}",
        email=f"{key}@example.com",
        name=name,
        groups=groups,
        role_blurb=blurb,
    )


DEMO_IDENTITIES: tuple[DemoIdentity, ...] = (
    _identity("alice", "Alice Requester", ("engineering",), "Requester: asks for access"),
    _identity("bob", "Bob Approver", ("approvers", "sre"), "Approver: decides requests"),
    _identity("erin", "Erin Approver", ("approvers",), "Second approver"),
    _identity("carol", "Carol Auditor", ("compliance",), "Auditor: reads and exports the trail"),
    _identity(
        "dave", "Dave On-call", ("engineering", "oncall"), "On-call engineer: break-glass requests"
    ),
    _identity("admin", "Portal Admin", ("portal-admins",), "Portal admin: manages resources"),
)


def get_identity(key: str, identities: tuple[DemoIdentity, ...] = DEMO_IDENTITIES) -> DemoIdentity:
    """Return the identity named ``key``; raise ``KeyError`` for an unknown key."""
    for identity in identities:
        if identity.key == key:
            return identity
    raise KeyError(key)
