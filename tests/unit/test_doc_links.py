"""Every link in the project's Markdown resolves: a relative link names a file or folder in the
repository, and a `#fragment` names a heading of the page it points to (GitHub's anchors).

Links inside code (fenced blocks, `inline code`) are not links and are not checked; web links
(http, https, mailto) are left to the reader.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted(
    [REPO / "README.md", *(REPO / "docs").glob("*.md"), *(REPO / "functions").glob("*/README.md")]
    + [p for p in (REPO / "infra").rglob("README.md") if "node_modules" not in p.parts]
)

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def links(text: str) -> list[str]:
    """The targets of the Markdown links in `text`, outside code."""
    text = _INLINE_CODE.sub("", _FENCE.sub("", text))
    return _LINK.findall(text)


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text())
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", text, re.M):
        slug = anchor(heading)
        n, unique = 0, slug
        while unique in found:  # GitHub numbers repeated headings: x, x-1, x-2
            n += 1
            unique = f"{slug}-{n}"
        found.add(unique)
    return found


def broken_links(page: Path, repo: Path = REPO) -> list[str]:
    broken = []
    for target in links(page.read_text()):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        path_part, _, fragment = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.is_relative_to(repo) or not resolved.exists():
            broken.append(f"{target}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            broken.append(f"{target}: no heading #{fragment} in {resolved.relative_to(repo)}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_readme_links_every_page_in_docs() -> None:
    readme = set(links((REPO / "README.md").read_text()))
    unlinked = [
        p.name
        for p in sorted((REPO / "docs").iterdir())
        if p.suffix in {".md", ".yaml"}
        and f"docs/{p.name}" not in {t.partition("#")[0] for t in readme}
    ]
    assert unlinked == [], "pages in docs/ the README does not link to"


def test_a_broken_link_and_a_missing_heading_are_found(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# Title\n\n## Two commands\n")
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "probe.md"
    page.write_text(
        "# Probe\n\n[gone](nothing-here.md) [fine](../README.md#two-commands) "
        "[no heading](../README.md#not-a-heading) [outside](../../elsewhere.md) "
        "`[in code](missing.md)`\n```\n[in a fence](missing-too.md)\n```\n"
    )
    assert broken_links(page, tmp_path) == [
        "nothing-here.md: no such file",
        "../README.md#not-a-heading: no heading #not-a-heading in README.md",
        "../../elsewhere.md: no such file",
    ]


def test_anchors_follow_github() -> None:
    assert anchor("How today's numbers stay exact, and `make reconcile`") == (
        "how-todays-numbers-stay-exact-and-make-reconcile"
    )
    assert (
        anchor("Your first ad: served, clicked, reported")
        == "your-first-ad-served-clicked-reported"
    )
