"""The text of an expression: parsing it with positions, and the error that points into it.

``SourceText`` parses with ``ast.parse(mode="eval")`` and maps parser positions (1-based lines,
UTF-8 byte columns) back to character indexes, so that ``ExpressionError`` can show the
offending line with a caret under the part it is about. The checks of what an expression may
contain live in ``expr``.
"""

from __future__ import annotations

import ast
import re
import warnings

MAX_LENGTH = 1000
"""Longest accepted expression text [characters]."""
MAX_DEPTH = 50
"""Deepest accepted nesting of sub-expressions."""

_STATEMENTS = frozenset(
    {"import", "from", "def", "class", "return", "del", "pass", "break", "continue", "for"}
    | {"while", "with", "try", "except", "finally", "raise", "global", "nonlocal", "assert"}
    | {"async", "if", "elif", "else", "yield"}
)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_WINDOW = 80  # longest source line shown in a message [characters]


class ExpressionError(ValueError):
    """An expression is not accepted, or cannot be evaluated on the given columns.

    ``problem`` is the message without the position. When the error is about a place in the
    text, ``source`` is the text and ``lineno``, ``offset`` and ``end_offset`` locate the place
    like ``SyntaxError`` does (1-based, in characters, end exclusive, ``end_offset`` clipped to
    the line); the message then shows the line with a caret under the offending part.
    """

    def __init__(
        self, problem: str, source: str | None = None, start: int = 0, end: int | None = None
    ) -> None:
        self.problem, self.source = problem, source
        if source is None:
            self.lineno, self.offset, self.end_offset = 0, 0, 0
            super().__init__(problem)
            return
        head = _LINE_BREAK.split(source[:start])
        line = _LINE_BREAK.split(source[start - len(head[-1]) :])[0]
        col = len(head[-1])
        stop = min(max(end or 0, start + 1) - start + col, max(len(line), col + 1))
        self.lineno, self.offset, self.end_offset = len(head), col + 1, stop + 1
        where = f"column {col + 1}" if "\n" not in source and "\r" not in source else ""
        where = where or f"line {len(head)}, column {col + 1}"
        shown, shift = line, 0
        if len(line) > _WINDOW:  # show a window of the line around the caret
            lo = max(0, min(col - _WINDOW // 4, len(line) - _WINDOW))
            hi = lo + _WINDOW
            mark = "..." if lo else ""
            shown = mark + line[lo:hi] + ("..." if hi < len(line) else "")
            shift, stop = lo - len(mark), min(stop, hi)
        shown = "".join(ch if ch.isprintable() else " " if ch == "\t" else "?" for ch in shown)
        carets = " " * (col - shift) + "^" * max(1, stop - col)
        super().__init__(f"{problem} ({where})\n  {shown}\n  {carets}")


class SourceText:
    """The source text, and positions of the parsed text mapped back to indexes into it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.parsed = source.lstrip(" \t\f\r\n")  # eval() strips it too; ast.parse does not
        self.skip = len(source) - len(self.parsed)
        self.lines = _LINE_BREAK.split(self.parsed)
        self.starts = [0, *(m.end() for m in _LINE_BREAK.finditer(self.parsed))]

    def index(self, lineno: int, byte_col: int) -> int:
        """Index into ``source`` of a parser position (1-based line, 0-based UTF-8 column)."""
        lineno = min(max(lineno, 1), len(self.lines))
        col = len(self.lines[lineno - 1].encode()[:byte_col].decode(errors="ignore"))
        return self.skip + self.starts[lineno - 1] + col

    def error(self, problem: str, start: int, end: int | None = None) -> ExpressionError:
        return ExpressionError(problem, self.source, start, end)

    def error_node(self, problem: str, node: ast.AST) -> ExpressionError:
        start = self.index(getattr(node, "lineno", 1), getattr(node, "col_offset", 0))
        end_lineno, end_col = getattr(node, "end_lineno", None), getattr(node, "end_col_offset", 0)
        end = None if end_lineno is None else self.index(end_lineno, end_col or 0)
        return self.error(problem, start, end)

    def segment(self, node: ast.AST) -> str:
        """The text of ``node``, shortened for a message."""
        text = " ".join((ast.get_source_segment(self.parsed, node) or "").split())
        return text if len(text) <= 60 else text[:57] + "..."

    def parse(self) -> ast.Expression:
        if len(self.source) > MAX_LENGTH:
            too_long = f"expression is too long: {len(self.source)} characters"
            raise self.error(f"{too_long} (limit {MAX_LENGTH})", MAX_LENGTH)
        if "\x00" in self.source:
            raise self.error("null bytes are not allowed", self.source.index("\x00"))
        if not self.parsed.strip():
            raise self.error("expression is empty", len(self.source))
        try:
            with warnings.catch_warnings():  # e.g. invalid escapes in strings, rejected anyway
                warnings.simplefilter("ignore", SyntaxWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                return ast.parse(self.parsed, mode="eval")
        except SyntaxError as e:
            raise self._syntax_error(e) from None
        except (RecursionError, MemoryError):
            raise self.error(f"expression is nested too deeply (limit {MAX_DEPTH})", 0) from None

    def _syntax_error(self, e: SyntaxError) -> ExpressionError:
        first = re.match(r"[A-Za-z_]+", self.parsed)
        if first and first.group() in _STATEMENTS:
            word = first.group()
            statement = f"syntax error: {word!r} starts a statement; only an expression is allowed"
            return self.error(statement, self.skip, self.skip + len(word))
        lineno = min(max(e.lineno or 1, 1), len(self.lines))
        line = self.lines[lineno - 1]
        col = min(e.offset - 1, len(line)) if e.offset else len(line)  # 0: at the end
        width = (e.end_offset or 0) - 1 - col if e.end_lineno == e.lineno else 1
        msg = e.msg
        if "Maybe you meant '==' or ':='" in msg or re.match(r"=(?!=)", line[col:]):
            msg = "assignment is not allowed (use '==' to compare)"
        start = self.skip + self.starts[lineno - 1] + col
        return self.error(f"syntax error: {msg}", start, start + max(width, 1))
