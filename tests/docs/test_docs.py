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
    # every command's `--help` from `pixelcam.cli.main`, in one process (25 processes would cost ~8 CPU-s)
    args = [sys.executable, "-c", HELP_ALL, *blocks]
    out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    printed = dict(zip(blocks, out.stdout.split(HELP_END)[:-1], strict=True))
    for command, text in blocks.items():
        assert printed[command].rstrip() == text.rstrip(), command


# Runs `pixelcam <command> --help` for each command line given, each printout closed by HELP_END.
HELP_END = "\n<<end of help>>\n"
HELP_ALL = f"""
import sys
from pixelcam.cli import main
for command in sys.argv[1:]:
    try:
        main([*command.split()[1:], "--help"])
    except SystemExit as exc:
        assert exc.code == 0, (command, exc.code)
    print({HELP_END!r}, end="", flush=True)
"""


def test_every_config_field_is_documented():
    page = (ROOT / "docs" / "reference" / "config.md").read_text()
    undocumented = [line.split("|")[1].strip() for line in page.splitlines() if line.endswith("|  |")]
    assert not undocumented, f"fields without a comment in their model's source: {undocumented}"


def test_the_readme_is_an_entry_point():
    readme = (ROOT / "README.md").read_text().splitlines()
    assert len(readme) <= 150, len(readme)
    text = "\n".join(readme)
    assert "make quickstart" in text and "make test" in text and "docs/" in text
