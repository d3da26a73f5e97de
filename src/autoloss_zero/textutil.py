"""Small text helpers for messages and generated files: clipping echoed input, escaping.

Error messages echo user input (formulas, option values, names); a hostile or careless
input can be megabytes long or hold control characters, so every echo goes through
:func:`clip`. Text pasted into generated Python source goes through
:func:`docstring_text`, which makes it inert inside a triple-quoted string.
"""

from __future__ import annotations

ECHO_LIMIT = 200
"""Characters of user input echoed in an error message."""


def clip(text: object, limit: int = ECHO_LIMIT, pos: int | None = None) -> str:
    """``repr`` of ``text`` cut to about ``limit`` characters (around ``pos`` if given).

    The result is one line (``repr`` escapes newlines) and says how much was left out.
    """
    s = text if isinstance(text, str) else str(text)
    if len(s) <= limit:
        return repr(s)
    if pos is None or pos < limit // 2:
        start = 0
    else:
        start = min(pos - limit // 2, len(s) - limit)
    end = start + limit
    head = f"...({start} chars) " if start > 0 else ""
    tail = f" ...({len(s) - end} more chars)" if end < len(s) else ""
    return f"{head}{s[start:end]!r}{tail}"


def one_line(text: str, limit: int = 1000) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    s = " ".join(str(text).splitlines())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def docstring_text(text: str) -> str:
    """``text`` escaped for the inside of a ``\"\"\"...\"\"\"`` string literal.

    Backslashes and double quotes are escaped, so no quote sequence can end the string;
    control characters other than newline (and any other non-printable character) become
    escape sequences. Evaluating the literal gives back ``text`` exactly.
    """
    out = []
    for ch in str(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\n")
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def show(value: object, limit: int = 60) -> str:
    """A value as echoed in a message: strings quoted, anything cut to ``limit`` characters."""
    if isinstance(value, str):
        return clip(value, limit)
    try:
        r = repr(value)
    except RecursionError:  # a deeply nested list from a hostile file
        r = f"<deeply nested {type(value).__name__}>"
    return r if len(r) <= limit else f"{r[:limit]} ...({len(r) - limit} more chars)"


_MD_SPECIAL = set("\\`*_{}[]<>()#+!|~$")


def md_text(text: object, limit: int = 300) -> str:
    """Text from a study for a Markdown report: one line, cut, with Markdown and HTML
    characters escaped (a hostile study cannot add links, images or markup)."""
    s = one_line(str(text), limit)
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in s)


def md_code(text: object, limit: int = 2000) -> str:
    """Text for a Markdown code span: one line, cut, without backticks or table bars."""
    s = one_line(str(text), limit).replace("`", "'").replace("|", "/")
    return f"`{s}`"
