"""Build the DNI tag that landing pages load, static/calltrack/dni.js, from its readable source static/calltrack/src/dni.js.

    python scripts/build_dni.py          # write the build, print its sizes
    python scripts/build_dni.py --check  # exit 1 when the committed build is not the source's (CI, tests)

calmjs.parse (requirements-dev.txt: a pure-Python ES5 parser, so the build is reproducible wherever the tests run)
parses the source and prints it back without comments, whitespace or needless semicolons, local names shortened
(globals and property names kept). The tag is ES5 on purpose: a parse error here is a syntax an old browser lacks.
Customers' embeds keep their URL, .../static/calltrack/dni.js.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
from pathlib import Path

from calmjs.parse import es5
from calmjs.parse.unparsers.es5 import minify_print

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "static" / "calltrack" / "src" / "dni.js"
BUILD = ROOT / "static" / "calltrack" / "dni.js"
BANNER = "/*! calltrack DNI tag; readable source: static/calltrack/src/dni.js */\n"
GZIP_BUDGET = 3072  # bytes, gzipped: what a landing page downloads


def build(source: str) -> str:
    """The minified tag: the banner, then the source's program printed small."""
    return BANNER + minify_print(es5(source), obfuscate=True, obfuscate_globals=False, drop_semi=True) + "\n"


def gzipped_size(text: str) -> int:
    """Bytes once gzipped at level 9 (what a server's gzip or brotli sends, or a little more)."""
    return len(gzip.compress(text.encode(), compresslevel=9, mtime=0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check that the committed build is up to date")
    args = parser.parse_args(argv)
    built = build(SOURCE.read_text(encoding="utf-8"))
    size = gzipped_size(built)
    if args.check:
        if not BUILD.exists() or BUILD.read_text(encoding="utf-8") != built:
            print(f"{os.path.relpath(BUILD, ROOT)} is not the build of {os.path.relpath(SOURCE, ROOT)}: run `make dni`", file=sys.stderr)
            return 1
    else:
        BUILD.write_text(built, encoding="utf-8")
    print(f"{os.path.relpath(BUILD, ROOT)}: {len(built.encode())} bytes, {size} gzipped (budget {GZIP_BUDGET})")
    if size >= GZIP_BUDGET:
        print(f"over the budget of {GZIP_BUDGET} bytes gzipped", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
