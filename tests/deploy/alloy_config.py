"""Just enough of Alloy's configuration syntax to check what the log pipeline extracts and where it
writes: brace-balanced blocks (skipping strings and comments) and the keys of `name = { ... }` maps."""

from __future__ import annotations

import re

# A double-quoted string with escapes, a raw (backtick) string, or a line comment: braces inside them
# do not open or close blocks.
_OPAQUE = re.compile(r'"(?:\\.|[^"\\])*"|`[^`]*`|//[^\n]*')


def block(text: str, header: str) -> str:
    """The body of the first block opened by `header {`, e.g. block(config, 'loki.write "loki"')."""
    opening = re.search(re.escape(header) + r"\s*\{", text)
    assert opening, f"no block {header!r}"
    depth, index = 1, opening.end()
    while index < len(text):
        opaque = _OPAQUE.match(text, index)
        if opaque:
            index = opaque.end()
            continue
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[opening.end() : index]
        index += 1
    raise AssertionError(f"block {header!r} is not closed")


def map_keys(text: str, attribute: str) -> set[str]:
    """The keys of the map assigned to `attribute = { ... }` in text."""
    match = re.search(rf"\b{attribute}\s*=\s*\{{(.*?)\}}", text, re.DOTALL)
    assert match, f"no map {attribute!r}"
    return set(re.findall(r"^\s*(\w+)\s*=", match.group(1), re.MULTILINE))


def string_attribute(text: str, attribute: str) -> str:
    match = re.search(rf'\b{attribute}\s*=\s*"([^"]*)"', text)
    assert match, f"no string attribute {attribute!r}"
    return match.group(1)
