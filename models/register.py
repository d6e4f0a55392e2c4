"""Shapes of the client register: a client as read from the care system, and an import's outcome."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Client(Frozen):
    """One care recipient, in clear: lives only while the register is being built."""

    customer_number: str
    first_names: str  # all first names as the care system holds them: "Karl-Erik Johan"
    last_name: str
    personnummer: str  # canonical: 12 characters, century resolved
    phones: tuple[str, ...] = ()  # E.164
    address: str | None = None  # the street address: "Storgatan 12 B"


class RowProblem(Frozen):
    """A row of the export that was rejected, or imported with a part left out; never its values."""

    row: int  # line of the file where the record starts (the header is line 1)
    reason: str
    rejected: bool


class ImportSummary(Frozen):
    rows: int
    imported: int
    rejected: int
    warnings: int
    problems: tuple[RowProblem, ...] = ()


class RegisterInfo(Frozen):
    """What `brukarvakt register info` shows: counts and dates, no client data."""

    clients: int
    created: str
    keys: int
    file_bytes: int
