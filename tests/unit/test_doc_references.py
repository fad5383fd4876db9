"""Every reference to a section of a document under docs/ (the file's path, a comma, the section's name in
double quotes) in the code, tests, tools, configs and docs names a heading (or a bold paragraph title) that
exists in that document, so moving a section cannot leave a reference behind."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("service/**/*.py", "tests/**/*.py", "tools/**/*.py", "docs/*.md", "README.md", "configs/**/*.toml")
REF = re.compile(r'docs/([\w-]+\.md)\)?,\s+"([^"]+)"')


def _titles(doc: Path) -> list[str]:
    text = doc.read_text()
    heads = [line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")]
    return heads + re.findall(r"\*\*([^*]+)\*\*", text)


def _references() -> list[tuple[str, str, str]]:
    out = []
    for pattern in SOURCES:
        for f in sorted(ROOT.glob(pattern)):
            if ".venv" in f.parts:
                continue
            # a reference may wrap across lines, inside a comment or a docstring
            text = re.sub(r"\s*\n\s*(#\s*)?", " ", f.read_text())
            out += [(str(f.relative_to(ROOT)), doc, name) for doc, name in REF.findall(text)]
    return out


def test_every_section_reference_resolves():
    refs = _references()
    assert len(refs) >= 10, refs  # the pattern still finds the references this repository has
    missing = []
    for where, doc, name in refs:
        path = ROOT / "docs" / doc
        if not path.exists() or not any(t.startswith(name) for t in _titles(path)):
            missing.append(f'{where}: docs/{doc}, "{name}"')
    assert not missing, missing
