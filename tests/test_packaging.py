"""The installed package holds every module and data file the source tree has (not only an editable install)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO


def test_the_wheel_holds_every_module_and_the_name_model(tmp_path: Path) -> None:
    # Built from a clean copy: a build folder or egg-info left in the tree would hide a gap.
    source = tmp_path / "src"
    shutil.copytree(
        REPO,
        source,
        # .venv: README's commands make the virtual environment inside the source tree.
        ignore=shutil.ignore_patterns(
            "build", "*.egg-info", "__pycache__", ".git", "out", "var", ".*_cache", ".venv"
        ),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("brukarvakt-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        str(p.relative_to(REPO))
        for package in ("gateway", "rules", "models")
        for p in (REPO / package).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    missing = sorted(expected - names)
    assert not missing, f"not in the wheel: {missing[:10]}"
    assert "gateway/data/ner_sv/meta.json" in names and "gateway/extractors/pdf.py" in names
