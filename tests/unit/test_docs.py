"""The documentation (README.md, docs/**/*.md) stands on its own and points at real things:
every relative link and anchor resolves (anchors made from headings as GitHub makes them),
every repository path named in backticks exists, and nothing points outside the repository.
Pure Python: the files are read, nothing is fetched."""
from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Top-level directories of this repository: a code span starting with one of them and a
# slash names a file or directory that must exist.
REPO_DIRS = ("app", "chalicelib", "thumbgen", "tests", "bench", "infra", "docs", "scripts",
             ".chalice", ".github", ".ci")
# Any Markdown file named in a page, and any path that climbs up with ../ from it.
MD_NAME = re.compile(r"(?<![\w/.-])([\w-]+(?:\.[\w-]+)*\.md)\b")
PARENT_PATH = re.compile(r"(?<![\w.])((?:\.\./)+[\w.-]+)")

FENCE = re.compile(r"^(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"", re.I)
# A path: lower-case segments (a metric name such as `thumbgen/StuckImages` is not one).
REPO_PATH = re.compile(r"^(?:%s)/[a-z0-9_./-]*$" % "|".join(re.escape(d) for d in REPO_DIRS))


def doc_files(root: Path = REPO) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def prose_lines(text: str):
    """(line number, line) outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def heading_text(raw: str) -> str:
    """A heading as GitHub renders it: code spans keep their text, links their label,
    emphasis marks and HTML tags go."""
    text = CODE_SPAN.sub(lambda m: m.group(2).strip(), raw)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    return text.replace("*", "")


def slug(text: str) -> str:
    """github-slugger: lower case; keep letters, marks, digits, connector punctuation (_),
    spaces and hyphens; each space becomes a hyphen."""
    kept = "".join(c for c in text.lower()
                   if c in " -" or unicodedata.category(c)[0] in "LMN" or unicodedata.category(c) == "Pc")
    return kept.replace(" ", "-")


def anchors(text: str) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(text):
        found.update(HTML_ANCHOR.findall(line))
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(heading_text(m.group(2)))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(text: str):
    """(line number, target) of every inline link and image outside code."""
    for number, line in prose_lines(text):
        for m in LINK.finditer(CODE_SPAN.sub("", line)):
            yield number, m.group(1)


def code_spans(text: str):
    for number, line in prose_lines(text):
        for m in CODE_SPAN.finditer(line):
            yield number, m.group(2).strip()


def broken_links(path: Path, root: Path = REPO) -> list[str]:
    text = path.read_text(encoding="utf-8")
    problems = []
    for number, target in links(text):
        if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, mailto:, …
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(root)}:{number}: {target}"
        if not dest.exists():
            problems.append(f"{where}: no such file")
        elif not dest.resolve().is_relative_to(root.resolve()):
            problems.append(f"{where}: outside the repository")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text(encoding="utf-8")):
            problems.append(f"{where}: no heading with that anchor in {dest.relative_to(root)}")
    return problems


def ignored_dirs(root: Path) -> tuple[str, ...]:
    """Directories .gitignore names by path (made by a run, never committed)."""
    gitignore = root / ".gitignore"
    lines = gitignore.read_text().splitlines() if gitignore.exists() else []
    return tuple(line.strip() for line in lines if "/" in line.strip()[:-1] and line.strip().endswith("/"))


def missing_paths(path: Path, root: Path = REPO) -> list[str]:
    problems = []
    generated = ignored_dirs(root)
    for number, span in code_spans(path.read_text(encoding="utf-8")):
        candidate = span.split("::")[0].rstrip(":,.")
        if not REPO_PATH.match(candidate) or candidate.startswith(generated):
            continue
        if not (root / candidate).exists():
            problems.append(f"{path.relative_to(root)}:{number}: `{span}` does not exist")
    return problems


@functools.cache
def markdown_names(root: Path) -> frozenset[str]:
    """The names of the Markdown files the repository holds (not those of .venv's packages)."""
    tops = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return frozenset(p.name for top in [root, *tops] for p in (top.glob("*.md") if top == root else top.rglob("*.md")))


def outside_references(path: Path, root: Path = REPO) -> list[str]:
    """Markdown files the repository does not hold, and ../ paths that leave it: a page
    must not lean on anything a clone lacks."""
    held = markdown_names(root)
    problems = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{path.relative_to(root)}:{number}"
        problems += [f"{where}: {name}: no such file here" for name in MD_NAME.findall(line) if name not in held]
        problems += [f"{where}: {up}: outside the repository" for up in PARENT_PATH.findall(line)
                     if not (path.parent / up).resolve().is_relative_to(root.resolve())]
    return problems


# --- the checker itself -----------------------------------------------------------------

def test_slugs_follow_githubs_rules():
    assert slug(heading_text("The two commands")) == "the-two-commands"
    assert slug(heading_text("### `GET /images/{id}`: the image view".lstrip("# "))) == "get-imagesid-the-image-view"
    assert slug(heading_text("Pixel limit: `MAX_PIXELS = 50_000_000`")) == "pixel-limit-max_pixels--50_000_000"
    assert slug(heading_text("Lambda sizing: 1769 MB for `resize_upload`")) == "lambda-sizing-1769-mb-for-resize_upload"
    assert slug(heading_text("Latency: end of the PUT → webhook received")) == "latency-end-of-the-put--webhook-received"
    assert slug(heading_text("IAM: one role per function")) == "iam-one-role-per-function"
    assert slug(heading_text("[Links](x.md) and **bold**")) == "links-and-bold"


def test_anchors_number_repeated_headings_and_skip_code():
    text = "# A\n## Same\n```\n# not a heading\n```\n## Same\n<a id=\"custom\"></a>\n"
    assert anchors(text) == {"a", "same", "same-1", "custom"}


def test_the_checker_finds_broken_links_anchors_and_paths(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "chalicelib").mkdir()
    (tmp_path / "chalicelib" / "real.py").write_text("")
    (tmp_path / "docs" / "other.md").write_text("# Other\n## A part\n")
    (tmp_path / ".gitignore").write_text("bench/out/\n.venv/\n")
    page = tmp_path / "README.md"
    page.write_text(
        "# Title\n"
        "[ok](docs/other.md#a-part) [ok](#title) [web](https://example.com/x#y) ![img](docs/other.md)\n"
        "[gone](docs/missing.md) [bad anchor](docs/other.md#nope) [bad here](#nothing)\n"
        "`chalicelib/real.py` `chalicelib/gone.py` `tests/unit/test_x.py::test_y` `uploads/{id}`\n"
        "`thumbgen/StuckImages` `bench/out/engine.json`\n"
        "```\n[in code](docs/missing-too.md) `chalicelib/also-gone.py`\n```\n"
        "`[in a code span](docs/missing-three.md)`\n"
    )
    assert broken_links(page, tmp_path) == [
        "README.md:3: docs/missing.md: no such file",
        "README.md:3: docs/other.md#nope: no heading with that anchor in docs/other.md",
        "README.md:3: #nothing: no heading with that anchor in README.md",
    ]
    assert missing_paths(page, tmp_path) == [
        "README.md:4: `chalicelib/gone.py` does not exist",
        "README.md:4: `tests/unit/test_x.py::test_y` does not exist",
    ]


def test_the_checker_finds_references_a_clone_lacks(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other\n")
    page = tmp_path / "docs" / "page.md"
    page.write_text("see other.md and ../README.md, ../docs/other.md\n"
                    "the contract in SPEC.md, notes in ../../elsewhere/notes\n")
    (tmp_path / "README.md").write_text("")
    assert outside_references(page, tmp_path) == [
        "docs/page.md:2: SPEC.md: no such file here",
        "docs/page.md:2: ../../elsewhere: outside the repository",
    ]


# --- the documentation ------------------------------------------------------------------

@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_and_anchor_resolves(path):
    assert broken_links(path) == []


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_repository_path_in_backticks_exists(path):
    assert missing_paths(path) == []


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_the_docs_point_at_nothing_outside_the_repository(path):
    assert outside_references(path) == []
