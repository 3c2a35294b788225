"""How error messages show what a client sent: as JSON (true, null, "abc"), the notation it wrote in."""

import json

MAX_SHOWN_CHARS = 40


def quoted(value: object) -> str:
    """`value` in JSON, cut to MAX_SHOWN_CHARS so an error never echoes a whole payload."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS - 3] + "..."
