#!/usr/bin/env python3
"""Add the openfaasads adapter to a Prebid Server (Go, module github.com/prebid/prebid-server/v4)
source tree: copy adapters/openfaasads and its static/bidder-info and static/bidder-params files,
then register the bidder in openrtb_ext/bidders.go and exchange/adapter_builders.go, each line in
its alphabetical place, and gofmt both files. Running it again changes nothing but the copied
files, so it also updates an installed adapter.

    python3 infra/prebid-server/install.py ~/src/prebid-server
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIDDER = "openfaasads"
CONSTANT = "BidderOpenfaasads"
MODULE = "github.com/prebid/prebid-server/v4"
COPIED = (
    f"adapters/{BIDDER}",
    f"static/bidder-info/{BIDDER}.yaml",
    f"static/bidder-params/{BIDDER}.json",
)


class InstallError(RuntimeError):
    """The tree is not a Prebid Server v4 tree this script knows how to change."""


def install(tree: Path) -> None:
    """Copy the adapter into `tree` and register it; idempotent."""
    go_mod = tree / "go.mod"
    if not go_mod.is_file() or f"module {MODULE}\n" not in go_mod.read_text():
        raise InstallError(f"{tree} is not a Prebid Server tree of module {MODULE}")
    for relative in COPIED:
        source, target = HERE / relative, tree / relative
        if source.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)
    bidders = tree / "openrtb_ext" / "bidders.go"
    builders = tree / "exchange" / "adapter_builders.go"
    _register(bidders, r"var coreBidderNames \[\]BidderName = \[\]BidderName\{", f"\t{CONSTANT},")
    _register(bidders, r"const \(", f'\t{CONSTANT} BidderName = "{BIDDER}"', "BidderAppnexus ")
    _register(builders, r"import \(", f'\t"{MODULE}/adapters/{BIDDER}"', f"{MODULE}/adapters/")
    _register(
        builders,
        r"return map\[openrtb_ext\.BidderName\]adapters\.Builder\{",
        f"\t\topenrtb_ext.{CONSTANT}: {BIDDER}.Builder,",
    )
    subprocess.run(["gofmt", "-w", str(bidders), str(builders)], check=True)


def _register(path: Path, opening: str, line: str, member: str = "") -> None:
    """Insert `line` into the first block opened by `opening` (whose lines contain `member`), in
    alphabetical order of the block's lines, unless the block already has it."""
    lines = path.read_text().split("\n")
    for start, text in enumerate(lines):
        if re.search(opening, text) and _block_has(lines, start, member):
            break
    else:
        raise InstallError(f"{path}: no block opened by {opening!r}")
    key = _key(line)
    index = start + 1
    while not re.match(r"^\s*[)}]", lines[index]):
        if _key(lines[index]) == key:
            return
        if lines[index].strip() and _key(lines[index]) > key:
            break
        index += 1
    lines.insert(index, line)
    path.write_text("\n".join(lines))


def _block_has(lines: list[str], start: int, member: str) -> bool:
    for text in lines[start + 1 :]:
        if re.match(r"^\s*[)}]", text):
            return False
        if member in text:
            return True
    return False


def _key(line: str) -> str:
    """What a block sorts by, case-folded: the first word, or an aliased import's path."""
    words = line.strip().split()
    if not words:
        return ""
    word = words[1] if len(words) == 2 and words[1].startswith('"') else words[0]
    return word.strip('",:').casefold()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tree", type=Path, help="the Prebid Server source tree (a git clone)")
    try:
        install(parser.parse_args().tree.resolve())
    except (InstallError, OSError, subprocess.CalledProcessError) as exc:
        print(f"install.py: {exc}", file=sys.stderr)
        return 1
    print(f"openfaasads added; test it: cd <tree> && go test ./adapters/{BIDDER}/...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
