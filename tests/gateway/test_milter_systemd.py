"""The systemd units in deploy/systemd: each service hardened the same way, and valid for systemd itself."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
INSTALLED = "/opt/brukarvakt/venv/bin/brukarvakt"
VERBS = {
    "brukarvakt-serve.service": "serve",
    "brukarvakt-milter.service": "milter",
    "brukarvakt-console.service": "console",
}
STATE = "/var/lib/brukarvakt"


def service(name: str) -> dict[str, list[str]]:
    """The [Service] section; a key given several times keeps every value, as systemd reads it."""
    values: dict[str, list[str]] = {}
    section = ""
    for line in (UNITS / name).read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service" and "=" in line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_there_is_a_unit_for_every_long_running_command():
    assert sorted(p.name for p in UNITS.glob("*.service")) == sorted(VERBS)


@pytest.mark.parametrize("name", sorted(VERBS))
def test_every_unit_runs_its_verb_as_its_own_user_and_can_write_only_its_state(name):
    values = service(name)
    assert values["ExecStart"][0].split()[:2] == [INSTALLED, VERBS[name]]
    assert values["User"] == ["brukarvakt"] and values["Group"] == ["brukarvakt"]
    assert values["NoNewPrivileges"] == ["yes"]
    assert values["ProtectSystem"] == ["strict"]
    assert values["ReadWritePaths"] == [STATE]
    assert values["StateDirectory"] == ["brukarvakt"]
    assert values["CapabilityBoundingSet"] == [""], "no capabilities: the ports are above 1024"
    for key in ("ProtectHome", "PrivateTmp", "PrivateDevices", "RestrictSUIDSGID", "ProtectKernelModules"):
        assert values[key] == ["yes"], key
    assert values["Environment"] == ["BRUKARVAKT_CONFIG=/etc/brukarvakt/config.yaml"]


def test_the_gateway_and_the_milter_reload_on_sighup_and_the_milter_always_comes_back():
    for name in ("brukarvakt-serve.service", "brukarvakt-milter.service"):
        assert service(name)["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert service("brukarvakt-milter.service")["Restart"] == ["always"]


def test_systemd_accepts_every_unit_without_a_warning(tmp_path):
    """systemd-analyze verify, with ExecStart pointed at this checkout (the units name the installed path).

    Where systemd-analyze is missing (a container without systemd), the checks above still hold.
    """
    analyze = shutil.which("systemd-analyze")
    here = f"{sys.executable} -m gateway.cli"
    for name in VERBS:
        (tmp_path / name).write_text((UNITS / name).read_text().replace(INSTALLED, here))
    if analyze is None:
        assert all(INSTALLED not in (tmp_path / name).read_text() for name in VERBS)
        return
    done = subprocess.run(
        [analyze, "verify", *(str(tmp_path / name) for name in sorted(VERBS))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stderr.strip()) == (0, ""), done.stderr
