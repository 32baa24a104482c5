"""The expression text: parser positions mapped to characters, and errors that point there."""

from __future__ import annotations

import pytest

from pitwire.model.exprtext import MAX_LENGTH, ExpressionError, SourceText


def test_error_shows_the_line_with_a_caret_under_the_span():
    """An error about a span names its column and underlines exactly that span."""
    err = ExpressionError("bad thing", "speed + foo * 2", 8, 11)
    assert str(err) == "bad thing (column 9)\n  speed + foo * 2\n          ^^^"
    assert (err.lineno, err.offset, err.end_offset) == (1, 9, 12)


def test_error_on_a_later_line_names_line_and_column():
    """In multi-line text the message gives line and column, and shows only that line."""
    err = ExpressionError("bad", "speed +\n  foo", 10, 13)
    assert str(err).splitlines() == ["bad (line 2, column 3)", "    foo", "    ^^^"]


def test_error_without_source_is_the_problem_alone():
    """An error not about a place in the text is just its message."""
    err = ExpressionError("columns differ in length")
    assert str(err) == "columns differ in length"
    assert err.lineno == 0


def test_long_lines_are_windowed_around_the_caret():
    """A line longer than the window is shown around the caret, with ellipses."""
    source = "a + " * 40 + "zz" + " + a" * 40
    start = source.index("zz")
    lines = str(ExpressionError("x", source, start, start + 2)).splitlines()
    assert lines[1].strip().startswith("...") and lines[1].endswith("...")
    assert lines[1][lines[2].index("^") : lines[2].index("^") + 2] == "zz"


def test_index_maps_utf8_byte_columns_to_characters():
    """Parser columns are UTF-8 bytes; the index is in characters, after leading blanks."""
    text = SourceText("  °x + y")
    assert text.index(1, len("°x + ".encode())) == 2 + len("°x + ")


def test_parse_rejects_overlong_empty_and_statements():
    """Too long, empty and statement text are rejected with a pointed error."""
    with pytest.raises(ExpressionError, match="too long"):
        SourceText("1+" * MAX_LENGTH + "1").parse()
    with pytest.raises(ExpressionError, match="empty"):
        SourceText("   ").parse()
    with pytest.raises(ExpressionError, match="'import' starts a statement"):
        SourceText("import os").parse()
