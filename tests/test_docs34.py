"""Session 34: README.md was an 81 KB reference (table rows of 2000-3900 characters) that a newcomer
could not read. It is a short page now and the full text lives in docs/reference.md, so the pages
link into each other by anchors: every relative link in the repository's Markdown must lead to a
file that exists and, where it names one, to a heading (GitHub's slug) or anchor there."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "weights" / "README.md"]

_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")


def _prose(text: str) -> list[str]:
    """The lines outside fenced code blocks (whose ``#`` comments are no headings, their brackets no links)."""
    out, fence = [], None
    for line in text.split("\n"):
        m = re.match(r"^ {0,3}(`{3,}|~{3,})", line)
        if m and (fence is None or m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence)):
            fence = m.group(1) if fence is None else None
            continue
        if fence is None:
            out.append(line)
    return out


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: its text as shown (links as their words, code without its
    backticks), lower case, every character but letters, digits, ``_``, ``-`` and spaces left out,
    spaces as ``-``."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text)
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors a page has: its headings' slugs (a repeated one as ``slug-1``, ``slug-2``...)
    and any ``<a name=...>``/``id=...`` of its own."""
    seen: dict[str, int] = {}
    found = set()
    for line in _prose(page.read_text(encoding="utf-8")):
        m = _HEADING.match(line)
        if m:
            s = slug(m.group(2))
            found.add(f"{s}-{seen[s]}" if s in seen else s)
            seen[s] = seen.get(s, 0) + 1
        found.update(re.findall(r"<a\s[^>]*(?:name|id)=\"([^\"]+)\"", line))
    return found


def broken_links(page: Path) -> list[str]:
    """Each relative link of ``page`` whose file, or whose ``#anchor`` in that file, is missing."""
    bad = []
    for line in _prose(page.read_text(encoding="utf-8")):
        line = re.sub(r"(`+)(?:(?!\1).)+\1", "", line)  # (a link written inside code is no link)
        for target in _LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # (https:, mailto:: not ours to check)
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                bad.append(f"{target}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                bad.append(f"{target}: no heading #{anchor} in {dest.name}")
    return bad


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_somewhere(page):
    assert broken_links(page) == []


def test_the_checker_finds_a_missing_file_a_missing_heading_and_knows_githubs_slugs(tmp_path):
    (tmp_path / "ref.md").write_text(
        "# Ref\n\n## `--codec`, `--crf`\n\n## Hardware encoding (NVENC)\n\n## Notes\n\n## Notes\n\n"
        "```sh\n# not a heading\n```\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[a](ref.md#--codec---crf) [b](ref.md#hardware-encoding-nvenc) [c](ref.md#notes-1) [d](#top)\n"
        "[e](ref.md#not-a-heading) [f](gone.md) [g](ref.md#notes-2) [h](https://example.com/x#y)\n"
        "`[i](inside-code.md)`\n\n# Top\n", encoding="utf-8")
    assert broken_links(page) == ["ref.md#not-a-heading: no heading #not-a-heading in ref.md",
                                  "gone.md: no such file", "ref.md#notes-2: no heading #notes-2 in ref.md"]


def test_the_readme_is_a_page_a_newcomer_reads():
    """81 KB, rows of 3870 characters, before; the detail is docs/reference.md's."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.encode()) <= 25_000
    prose = _prose(text)
    assert max(map(len, prose)) <= 250, max(prose, key=len)
    for heading in ("## Quick start", "### `enhance` options", "### Exit codes", "### camera", "### serve",
                    "### info", "## Python API", "## Weights", "## How it works", "## Benchmarks"):
        assert heading in text.split("\n"), heading
    assert "docs/reference.md" in text
