"""Who is calling: the actor that the gateway knows from a verified token and
passes over RPC as a dict. Pure (no jwt, no nameko), so domains can use it."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.errors import Forbidden

ROLES = ("rep", "manager", "admin")


@dataclass(frozen=True)
class Principal:
    id: str
    role: str
    team_id: str | None
    name: str = ""
    username: str = ""
    # The user's token generation and whether he must change his password
    # first: what the gateway checks a token against; not part of as_dict.
    generation: int = 0
    must_change_password: bool = False

    @classmethod
    def of(cls, data: dict) -> Principal:
        """The actor a gateway passes over RPC (extra keys are ignored)."""
        return cls(
            id=data["id"],
            role=data["role"],
            team_id=data.get("team_id"),
            name=data.get("name", ""),
            username=data.get("username", ""),
            generation=int(data.get("gen") or 0),
            must_change_password=bool(data.get("pwc")),
        )

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "role": self.role,
            "team_id": self.team_id,
            "name": self.name,
            "username": self.username,
        }


def require_admin(actor: Principal, only: str) -> Principal:
    """403 unless the actor is an admin; `only` says what only an admin does."""
    if actor.role != "admin":
        raise Forbidden("forbidden", f"only an admin {only}")
    return actor
