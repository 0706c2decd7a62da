"""The documentation: every generated page equals what its sources give now (the CLI parser, the config
models and their source comments, the committed study outputs and benchmark logs), the CLI reference equals
what `pixelcam ... --help` prints, and the README stays an entry point."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def generator():
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_pages_match_their_sources():
    drifted = [
        str(path.relative_to(ROOT))
        for path, text in generator().pages().items()
        if not path.is_file() or path.read_text() != text
    ]
    assert not drifted, f"run `python docs/generate.py` and commit: {drifted}"


def test_the_cli_reference_is_what_help_prints():
    page = (ROOT / "docs" / "reference" / "cli.md").read_text()
    blocks = dict(re.findall(r"## `(pixelcam[^`]*)`\n\n```text\n(.*?)\n```", page, re.S))
    paths = generator().command_paths(__import__("pixelcam.cli", fromlist=["build_parser"]).build_parser())
    assert set(blocks) == {" ".join(("pixelcam", *p)) for p in paths}  # every command, nothing else
    env = {**os.environ, "COLUMNS": generator().HELP_COLUMNS}
    for command, text in blocks.items():
        args = [sys.executable, "-m", "pixelcam.cli", *command.split()[1:], "--help"]
        out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        assert out.stdout.rstrip() == text.rstrip(), command


def test_every_config_field_is_documented():
    page = (ROOT / "docs" / "reference" / "config.md").read_text()
    undocumented = [line.split("|")[1].strip() for line in page.splitlines() if line.endswith("|  |")]
    assert not undocumented, f"fields without a comment in their model's source: {undocumented}"


def test_the_readme_is_an_entry_point():
    readme = (ROOT / "README.md").read_text().splitlines()
    assert len(readme) <= 150, len(readme)
    text = "\n".join(readme)
    assert "make quickstart" in text and "make test" in text and "docs/" in text
