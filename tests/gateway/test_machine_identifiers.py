"""A build file's machine identifiers do not block a mail: an Eclipse `.cproject` in a zip, its ids
ending in runs that read as samordningsnummer and personnummer, passes fully read, while the same
zip with a dashed personnummer in a comment is blocked."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import parse
from gateway.scanner import Scanner
from models.findings import SenderContext, Verdict
from tests.conftest import TODAY, skatteverket
from tests.gateway.test_attachments import mail_with, zip_file


def born_within_a_century(kind: str) -> str:
    """A Skatteverket test number whose 10-digit form, written without `+`, is the same person."""
    return next(n for n in skatteverket()[kind] if int(n[:4]) > TODAY.year - 100)


SAMORDNINGSNUMMER = born_within_a_century("samordningsnummer")
PERSONNUMMER = born_within_a_century("personnummer")
MEMBER = "styrning/.cproject"


def cproject(comment: str = "") -> bytes:
    """An Eclipse CDT project file as the IDE writes it: ids are a super-class name and a number."""
    s, p = SAMORDNINGSNUMMER[2:], PERSONNUMMER[2:]
    config = f"cdt.managedbuild.config.gnu.exe.debug.{s}"
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<?fileVersion 4.0.0?><cproject storage_type_id="org.eclipse.cdt.core.XmlProjectDescriptionStorage">
  <storageModule moduleId="org.eclipse.cdt.core.settings">
    <cconfiguration id="{config}">
      {comment}
      <storageModule moduleId="cdtBuildSystem" version="4.0.0">
        <configuration artifactName="${{ProjName}}" id="{config}" name="Debug" parent="cdt.managedbuild.config.gnu.exe.debug">
          <folderInfo id="{config}." name="/" resourcePath="">
            <toolChain id="cdt.managedbuild.toolchain.gnu.exe.debug.{p}" superClass="cdt.managedbuild.toolchain.gnu.exe.debug">
              <tool id="cdt.managedbuild.tool.gnu.archiver.base.{p}" name="GCC Archiver" superClass="cdt.managedbuild.tool.gnu.archiver.base.{s}"/>
              <tool id="cdt.managedbuild.tool.gnu.c.compiler.exe.debug.{s}" superClass="cdt.managedbuild.tool.gnu.c.compiler.exe.debug">
                <option id="gnu.c.compiler.exe.debug.option.optimization.level.{p}" superClass="gnu.c.compiler.exe.debug.option.optimization.level" value="gnu.c.optimization.level.none" valueType="enumerated"/>
              </tool>
            </toolChain>
          </folderInfo>
          <fileInfo id="{config}.{p}" name="larm.c" rcbsApplicability="disable" resourcePath="src/larm.c" toolsToInvoke="cdt.managedbuild.tool.gnu.c.compiler.exe.debug.{s}.{p}"/>
        </configuration>
      </storageModule>
    </cconfiguration>
  </storageModule>
</cproject>
""".encode()


def scan(tmp_path: Path, project: bytes) -> Verdict:
    scanner = Scanner(
        parse({"policy": {"person_name": "off"}, "register": {"path": str(tmp_path / "none.db")}})
    )
    message = mail_with("styrning.zip", zip_file({MEMBER: project}), "application/zip")
    sender = SenderContext(envelope_sender="utvecklare@hemtjanst.example", recipients=("lev@example.com",))
    return scanner.decide(scanner.scan_mail(message, TODAY), sender)


def test_an_eclipse_project_file_in_a_zip_passes_fully_read(tmp_path: Path, key_env: bytes) -> None:
    verdict = scan(tmp_path, cproject())
    assert (verdict.verdict, verdict.findings, verdict.unscanned) == ("pass", (), ())


def test_its_ids_hold_runs_that_alone_would_be_identity_numbers(tmp_path: Path, key_env: bytes) -> None:
    # What makes the pass above mean something: the same runs written as a person would.
    runs = f"Numren {SAMORDNINGSNUMMER[2:]} och {PERSONNUMMER[2:]}".encode()
    verdict = scan(tmp_path, cproject().replace(b"<cproject ", b"<!-- " + runs + b" --><cproject ", 1))
    assert verdict.verdict == "block"
    assert sorted(f.masked for f in verdict.findings) == sorted(
        f"{n[2:8]}-****" for n in (SAMORDNINGSNUMMER, PERSONNUMMER)
    )


@pytest.mark.parametrize(
    "number", [PERSONNUMMER, SAMORDNINGSNUMMER], ids=["personnummer", "samordningsnummer"]
)
def test_the_same_zip_with_a_dashed_number_in_a_comment_is_blocked(
    tmp_path: Path, key_env: bytes, number: str
) -> None:
    comment = f"<!-- Testfall för brukaren {number[2:8]}-{number[8:]}, ta bort före leverans -->"
    verdict = scan(tmp_path, cproject(comment))
    assert verdict.verdict == "block"
    (finding,) = verdict.findings
    assert finding.masked == f"{number[2:8]}-****"
    assert finding.location.part.endswith(f"styrning.zip/{MEMBER}")
