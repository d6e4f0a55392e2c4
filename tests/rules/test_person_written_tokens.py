"""A dotted file name a person wrote is not a machine's token: a name segment keeps the number.

Unseparated 10-digit runs inside dotted tokens with lettered segments are cleared as machine
identifiers (an Eclipse build file's `cdt.managedbuild.tool.gnu.archiver.base.NNNNNNNNNN`). A file
a care worker named `Anna.Andersson.NNNNNNNNNN.pdf` was cleared the same way. Machines write their
tokens' words in lower case or run together; a capitalised word is a person's. The numbers are
Skatteverket's test numbers; the names made up.
"""

from __future__ import annotations

import pytest

from rules import identity_numbers
from rules.normalize import normalize
from tests.conftest import TODAY, test_personnummer

PNR = test_personnummer(3)
TEN = PNR[2:]


def found(text: str) -> list[str]:
    return [h.canonical[2:] for h in identity_numbers.detect(normalize(text), TODAY)]


@pytest.mark.parametrize(
    "template",
    ["Anna.Andersson.{}.pdf", "Genomförandeplan.Åsa.{}.docx", "{}.Andersson.Anna", "plan.Anna.{}.pdf"],
)
def test_a_name_segment_makes_a_dotted_token_a_persons_writing(template: str) -> None:
    assert found(template.format(TEN)) == [TEN]


@pytest.mark.parametrize(
    "template",
    [
        "cdt.managedbuild.tool.gnu.archiver.base.{}",
        "com.example.app.MainActivity.{}",
        "org.eclipse.cdt.build.core.prefbase.toolchain.{}",
        "lista.{}.txt",
    ],
)
def test_a_machines_token_is_still_an_identifier(template: str) -> None:
    assert found(template.format(TEN)) == []
