"""The packaging files stay in step with `make package` (the build itself is `make package-test`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "package.yml"


def test_workflow_is_valid_for_github_actions():
    tool = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [str(tool), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_desktop_entry_and_installer(tmp_path):
    entry = (ROOT / "packaging" / "basechat.desktop").read_text()
    assert "Exec=@EXEC@" in entry and "Icon=basechat" in entry
    folder = tmp_path / "Basechat"
    folder.mkdir()
    for name in ("install.sh", "basechat.desktop"):
        shutil.copy(ROOT / "packaging" / name, folder / name)
    shutil.copy(ROOT / "resources" / "icons" / "basechat.png", folder / "basechat.png")
    home = tmp_path / "home"
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    subprocess.run(["sh", str(folder / "install.sh")], check=True, env=env, capture_output=True)
    installed = (home / ".local/share/applications/basechat.desktop").read_text()
    assert f'Exec="{folder}/Basechat"' in installed
    assert (home / ".local/share/icons/hicolor/256x256/apps/basechat.png").is_file()
