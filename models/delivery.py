"""The outcome of handing a message on: the reply the gateway gives its own client."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Delivery(BaseModel):
    """`code` and `message` make the SMTP reply as `f"{code} {message}"`; one line, no identifier.

    `message` starts with the enhanced status code when there is one (`2.0.0 Ok: queued as ...`,
    `4.4.1 ...`). `delivered` is true only when the next hop answered 250 for every recipient or
    the message is safely in the local Maildir.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: int = Field(ge=200, le=599)
    message: str
    delivered: bool

    @property
    def reply(self) -> str:
        return f"{self.code} {self.message}"
