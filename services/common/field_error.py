"""The base of the domain errors that name the field they refuse (money,
forecast): pure, mapped to a 422 `{"fields": {field: why}}` at the entrypoint."""

from __future__ import annotations


class FieldError(ValueError):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(f"{field}: {message}" if field else message)
        self.message = message
        self.field = field

    @property
    def fields(self) -> dict[str, str]:
        return {self.field or "value": self.message}
