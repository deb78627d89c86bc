"""What every way into the model (a dataset, ``autoft predict``, ``autoft serve``) checks of a text's characters.

A Python string can hold a lone surrogate (U+D800-U+DFFF): half of a UTF-16 pair, from a JSON escape
such as ``"\\ud800"``, or a byte that was not UTF-8, which Python keeps as U+DC80-U+DCFF when it
decodes a command line. No UTF-8 text holds one, and the tokenizer refuses it with a TypeError, so
each entry point names the texts that hold one instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_SURROGATE = re.compile("[\ud800-\udfff]")


def not_unicode(texts: Sequence[object]) -> list[int]:
    """The indexes of the strings among ``texts`` that hold a lone surrogate (anything else is left alone)."""
    return [i for i, t in enumerate(texts) if isinstance(t, str) and _SURROGATE.search(t)]


def surrogate_note(text: str) -> str:
    """Where the first lone surrogate of ``text`` is, for messages: "U+D800 at character 5"."""
    found = _SURROGATE.search(text)
    return f"U+{ord(found.group()):04X} at character {found.start() + 1}" if found else "none"


#: what a message says a lone surrogate is
WHAT = "a lone surrogate, half of a UTF-16 pair or a byte that was not UTF-8, which is not text"
