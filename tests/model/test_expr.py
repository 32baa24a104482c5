"""Tests of the derived-channel expression engine: whitelist, error positions, numpy results."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pitwire.model.expr import (
    CONSTANTS,
    FUNCTIONS,
    MAX_DEPTH,
    MAX_LENGTH,
    ExpressionError,
    compile,
)

NAMES = ("speed", "rpm", "gear", "throttle", "brake", "steer", "g_lat", "g_lon")
Cols = dict[str, np.ndarray]


@pytest.fixture
def cols() -> Cols:
    rng = np.random.default_rng(20240521)
    n = 64
    return {
        "speed": rng.uniform(0, 330, n),
        "rpm": rng.uniform(0, 15000, n),
        "gear": rng.integers(-1, 9, n).astype(np.float64),
        "throttle": rng.uniform(0, 1, n),
        "brake": rng.uniform(0, 1, n),
        "steer": rng.uniform(-3, 3, n),
        "g_lat": rng.normal(0, 2, n),
        "g_lon": rng.normal(0, 2, n),
    }


def _where(cond: Any, a: Any, b: Any) -> Any:
    return np.where(cond, a, b)


ACCEPTED: list[tuple[str, Callable[[Cols], Any]]] = [
    ("sqrt(g_lat**2 + g_lon**2)", lambda c: np.sqrt(c["g_lat"] ** 2 + c["g_lon"] ** 2)),
    ("(brake > 0.05) & (throttle > 0.05)", lambda c: (c["brake"] > 0.05) & (c["throttle"] > 0.05)),
    ("(brake > 0.5) | (gear == 3)", lambda c: (c["brake"] > 0.5) | (c["gear"] == 3)),
    ("~(brake > 0.5)", lambda c: ~(c["brake"] > 0.5)),
    ("clip(speed / 3.6, 0, 100)", lambda c: np.clip(c["speed"] / 3.6, 0, 100)),
    ("where(gear > 0, rpm / gear, 0)", lambda c: _where(c["gear"] > 0, c["rpm"] / c["gear"], 0)),
    ("rpm / gear if gear > 0 else -1", lambda c: _where(c["gear"] > 0, c["rpm"] / c["gear"], -1)),
    ("0.2 < throttle <= 0.8", lambda c: (c["throttle"] > 0.2) & (c["throttle"] <= 0.8)),
    ("0 < brake < throttle < 1", lambda c: (c["brake"] > 0) & (c["brake"] < c["throttle"])),
    ("not (brake > 0.5)", lambda c: ~(c["brake"] > 0.5)),
    ("brake > 0.5 and throttle < 0.5", lambda c: (c["brake"] > 0.5) & (c["throttle"] < 0.5)),
    ("brake > 0.9 or gear < 0", lambda c: (c["brake"] > 0.9) | (c["gear"] < 0)),
    ("gear != 0", lambda c: c["gear"] != 0),
    ("-speed + +rpm - 2 * gear", lambda c: -c["speed"] + c["rpm"] - 2 * c["gear"]),
    ("speed // 7 % 3", lambda c: c["speed"] // 7 % 3),
    ("2 ** -gear", lambda c: 2.0 ** -c["gear"]),
    ("abs(steer) + sign(steer)", lambda c: np.abs(c["steer"]) + np.sign(c["steer"])),
    ("min(speed, rpm / 50, 100)", lambda c: np.minimum(np.minimum(c["speed"], c["rpm"] / 50), 100)),
    ("max(g_lat, g_lon)", lambda c: np.maximum(c["g_lat"], c["g_lon"])),
    ("exp(-throttle) * log(rpm + 1)", lambda c: np.exp(-c["throttle"]) * np.log(c["rpm"] + 1)),
    ("log10(rpm + 1)", lambda c: np.log10(c["rpm"] + 1)),
    (
        "sin(steer) + cos(steer) * tan(steer)",
        lambda c: np.sin(c["steer"]) + np.cos(c["steer"]) * np.tan(c["steer"]),
    ),
    ("atan2(g_lat, g_lon)", lambda c: np.arctan2(c["g_lat"], c["g_lon"])),
    ("hypot(g_lat, g_lon)", lambda c: np.hypot(c["g_lat"], c["g_lon"])),
    ("floor(speed) + ceil(speed)", lambda c: np.floor(c["speed"]) + np.ceil(c["speed"])),
    ("round(speed) + round(speed, 2)", lambda c: np.round(c["speed"]) + np.round(c["speed"], 2)),
    ("round(rpm, -2)", lambda c: np.round(c["rpm"], -2)),
    ("deg(steer) + rad(speed)", lambda c: np.degrees(c["steer"]) + np.radians(c["speed"])),
    ("speed / 3.6 * pi / e / g", lambda c: c["speed"] / 3.6 * np.pi / np.e / 9.80665),
    ("(brake > 0.5) * 100 - True", lambda c: (c["brake"] > 0.5).astype(np.float64) * 100 - 1),
    (
        "where(brake > 0.5, throttle > 0.5, False)",
        lambda c: _where(c["brake"] > 0.5, c["throttle"] > 0.5, False),
    ),
]


@pytest.mark.parametrize(("source", "expected"), ACCEPTED, ids=[s for s, _ in ACCEPTED])
def test_accepted_expression_matches_numpy(
    source: str, expected: Callable[[Cols], Any], cols: Cols
) -> None:
    """Each accepted construct evaluates vectorized to what the same numpy code computes."""
    result = compile(source, names=NAMES).evaluate(cols)
    with np.errstate(all="ignore"):
        want = np.broadcast_to(expected(cols), (64,))
    assert result.shape == (64,)
    np.testing.assert_allclose(result, want, rtol=1e-12, equal_nan=True)
    assert result.dtype == np.bool_ if want.dtype == np.bool_ else result.dtype.kind == "f"


def test_whitelist_is_exactly_the_documented_functions_and_constants() -> None:
    """The callable functions and named constants are exactly the documented whitelist."""
    assert set(FUNCTIONS) == {
        "abs", "min", "max", "sqrt", "exp", "log", "log10", "sin", "cos", "tan", "atan2",
        "hypot", "floor", "ceil", "round", "clip", "where", "sign", "deg", "rad",
    }  # fmt: skip
    assert dict(CONSTANTS) == {"pi": np.pi, "e": np.e, "g": 9.80665}


def test_names_lists_channels_read_in_first_use_order() -> None:
    """``names`` has each channel read once, in order of first use, and no constants."""
    expr = compile("rpm / gear + speed * g + rpm", names=NAMES)
    assert expr.names == ("rpm", "gear", "speed")


def test_constant_expression_fills_the_input_length() -> None:
    """A constant gives a full-length array, from the columns or from ``n``."""
    two_pi = compile("2 * pi", names=NAMES).evaluate({"speed": np.zeros(5)})
    assert two_pi.tolist() == [2 * np.pi] * 5
    assert compile("True", names=()).evaluate({}, n=3).tolist() == [True] * 3
    assert compile("1", names=()).evaluate({}, n=0).shape == (0,)


def test_division_by_zero_gives_inf_and_nan_without_warnings() -> None:
    """x/0 is inf or nan as in numpy, and huge powers overflow to inf, all without a warning."""
    speed = np.array([1.0, 0.0, -1.0])
    result = compile("speed / (speed - speed)", names=["speed"]).evaluate({"speed": speed})
    assert result[0] == np.inf
    assert np.isnan(result[1])
    assert result[2] == -np.inf
    assert compile("1 / 0 + 9 ** 9 ** 9", names=()).evaluate({}, n=1)[0] == np.inf
    assert np.isnan(compile("speed % 0", names=["speed"]).evaluate({"speed": speed})).all()


def test_integer_and_boolean_columns_compute_as_float() -> None:
    """Integer and boolean columns are read as float64 (no integer division, no bool logic)."""
    gear = np.array([1, 2, 0], dtype=np.int32)
    flag = np.array([True, False, True])
    result = compile("gear / 2 - flag + gear ** -1", names=["gear", "flag"]).evaluate(
        {"gear": gear, "flag": flag}
    )
    assert result.dtype == np.float64
    np.testing.assert_array_equal(result, [0.5 - 1 + 1, 1 - 0 + 0.5, 0 - 1 + np.inf])


def test_float32_columns_compute_in_float64() -> None:
    """float32 columns are computed in float64, so an expression's precision does not vary."""
    speed = np.ones(3, np.float32)
    for source in ("speed", "speed + speed", "speed * 2"):
        assert compile(source, names=["speed"]).evaluate({"speed": speed}).dtype == np.float64


def test_result_never_aliases_an_input_column(cols: Cols) -> None:
    """An expression that is just a channel returns a copy, not the caller's array."""
    result = compile("speed", names=NAMES).evaluate(cols)
    result[:] = -1
    assert (cols["speed"] >= 0).all()


def test_a_channel_shadows_a_constant_of_the_same_name() -> None:
    """A channel named like a constant (g) is read from the columns."""
    expr = compile("g * 2", names=["g"])
    assert expr.names == ("g",)
    assert expr.evaluate({"g": np.array([1.0])}).tolist() == [2.0]


def test_multiline_and_indented_expressions_are_accepted() -> None:
    """Leading whitespace and line breaks inside parentheses are fine (as in TOML strings)."""
    expr = compile("  \n  (speed +\n   rpm)\n", names=NAMES)
    assert expr.evaluate({"speed": np.ones(2), "rpm": np.ones(2)}).tolist() == [2.0, 2.0]


@pytest.mark.parametrize(
    ("columns", "problem"),
    [
        ({"speed": np.ones(2)}, "reads 'rpm', missing from the columns"),
        ({"speed": np.ones(2), "rpm": np.ones(3)}, "column 'rpm' has length 3, expected 2"),
        ({"speed": np.ones((2, 2)), "rpm": np.ones(2)}, "must be a 1-d array of numbers"),
        ({"speed": np.array(["a", "b"]), "rpm": np.ones(2)}, "must be a 1-d array of numbers"),
    ],
)
def test_evaluate_rejects_columns_that_do_not_fit(columns: Cols, problem: str) -> None:
    """Missing, ragged, 2-d or non-numeric columns raise ExpressionError saying which."""
    with pytest.raises(ExpressionError, match=problem.replace("(", r"\(")):
        compile("speed + rpm", names=NAMES).evaluate(columns)


def test_evaluate_needs_a_length_for_an_expression_without_columns() -> None:
    """A constant expression over no columns and without ``n`` asks for ``n``."""
    with pytest.raises(ExpressionError, match="pass n="):
        compile("1", names=()).evaluate({})


def test_attribute_error_message_matches_the_documented_shape() -> None:
    """The message names the construct and its text, the column, and shows a caret line."""
    with pytest.raises(ExpressionError) as info:
        compile("speed.real * 2", names=NAMES)
    assert str(info.value).splitlines() == [
        "attribute access is not allowed: 'speed.real' (column 1)",
        "  speed.real * 2",
        "  ^^^^^^^^^^",
    ]
    assert isinstance(info.value, ValueError)
    assert (info.value.lineno, info.value.offset, info.value.end_offset) == (1, 1, 11)


def test_limits_are_inclusive() -> None:
    """An expression of exactly MAX_LENGTH characters and MAX_DEPTH levels is accepted."""
    assert MAX_DEPTH == 50
    deepest = "-" * (MAX_DEPTH - 1) + "speed"  # 49 negations around a name: 50 levels
    assert compile(deepest, names=NAMES).evaluate({"speed": np.ones(1)}).tolist() == [-1.0]
    with pytest.raises(ExpressionError, match="nested too deeply"):
        compile("-" + deepest, names=NAMES)
    longest = "speed" + " " * (MAX_LENGTH - 5)
    assert len(compile(longest, names=NAMES).evaluate({"speed": np.ones(2)})) == 2


TOO_DEEP = "sqrt(" * 60 + "speed" + ")" * 60  # the 51st call is one level too deep

# source, words the message must contain, caret column (1-based), caret width
REJECTED: list[tuple[str, str, int, int]] = [
    ("rpm + speed[0]", "subscripts are not allowed: 'speed[0]'", 7, 8),
    ("__import__('os')", "call to '__import__' is not allowed", 1, 10),
    ("__import__('os').system('ls')", "attribute access is not allowed", 1, 23),
    ("1 + eval('1 + 1')", "call to 'eval' is not allowed", 5, 4),
    ("exec('x = 1')", "call to 'exec' is not allowed", 1, 4),
    ("open('/etc/passwd')", "call to 'open' is not allowed", 1, 4),
    ("getattr(speed, 'real')", "call to 'getattr' is not allowed", 1, 7),
    ("(lambda: 1)()", "lambda functions are not allowed: 'lambda: 1'", 2, 9),
    ("[s for s in speed]", "comprehensions are not allowed", 1, 18),
    ("max(s for s in speed)", "generator expressions are not allowed", 4, 18),
    ("f'{speed}' + 1", "f-strings are not allowed", 1, 10),
    ("speed + 'abc'", "string constants are not allowed: \"'abc'\"", 9, 5),
    ("b'abc'", "bytes constants are not allowed", 1, 6),
    ("clip(speed, lo=0, hi=1)", "keyword arguments are not allowed: 'lo=0'", 13, 4),
    ("clip(**speed)", "'**' arguments are not allowed", 6, 7),
    ("max(*speed)", "'*' unpacking is not allowed", 5, 6),
    ("(x := speed) + 1", "assignment expressions (:=) are not allowed", 2, 10),
    ("sped * 2", "unknown name 'sped' (did you mean 'speed'?; known channels: brake,", 1, 4),
    ("speed + " * 200 + "1", "expression is too long: 1601 characters (limit 1000)", 1001, 1),
    (TOO_DEEP, "expression is nested too deeply (limit 50 levels)", 251, len(TOO_DEEP) - 300),
    ("speed + * 2", "syntax error: invalid syntax", 9, 1),
    ("(speed + 2", "syntax error: '(' was never closed", 1, 1),
    ("import os", "syntax error: 'import' starts a statement; only an expression is allowed", 1, 6),
    ("speed = 1", "syntax error: assignment is not allowed (use '==' to compare)", 7, 1),
    ("speed ^ 2", "operator '^' is not allowed (use ** for powers)", 7, 1),
    ("speed << 2", "operator '<<' is not allowed", 7, 2),
    ("brake > 0.05 & throttle > 0.05", "'&' needs boolean operands", 9, 15),
    ("~speed", "'~' needs a boolean operand", 1, 6),
    ("sqrt(speed, 2)", "sqrt() takes 1 argument (2 given)", 1, 14),
    ("min(speed)", "min() takes 2 or more arguments (1 given)", 1, 10),
    ("round(speed, 1.5)", "round() digits must be a whole number", 14, 3),
    ("speed(1)", "channel 'speed' is not a function", 1, 5),
    ("sqrt + 1", "function 'sqrt' must be called", 1, 4),
    ("speed is None", "'is' comparisons are not allowed", 1, 13),
    ("speed in gear", "'in' comparisons are not allowed", 1, 13),
    ("None", "'None' is not allowed", 1, 4),
    ("2j * speed", "complex numbers are not allowed", 1, 2),
    ("(speed, rpm)", "lists, tuples, sets and dicts are not allowed", 1, 12),
    ("{1: speed}", "lists, tuples, sets and dicts are not allowed", 1, 10),
    ("speed\x00", "null bytes are not allowed", 6, 1),
    ("   ", "expression is empty", 4, 1),
    ("   speed.real", "attribute access is not allowed", 4, 10),
]


@pytest.mark.parametrize(("source", "problem", "column", "width"), REJECTED)
def test_rejected_construct_is_named_and_pointed_at(
    source: str, problem: str, column: int, width: int
) -> None:
    """Each construct outside the whitelist raises ExpressionError naming it, with a caret."""
    with pytest.raises(ExpressionError) as info:
        compile(source, names=NAMES)
    err, lines = info.value, str(info.value).splitlines()
    assert problem in lines[0]
    assert lines[0].endswith(f"(column {column})")
    assert (err.lineno, err.offset, err.end_offset - err.offset) == (1, column, width)
    if len(source) <= 80:  # the whole line is shown
        assert lines[1] == "  " + "".join(c if c.isprintable() else "?" for c in source)
        assert lines[2] == "  " + " " * (column - 1) + "^" * width


def test_long_line_is_shown_as_a_window_around_the_caret() -> None:
    """A long source line is cut to a window, and the caret still sits under the right text."""
    source = "speed + " * 200 + "1"
    with pytest.raises(ExpressionError) as info:
        compile(source, names=NAMES)
    shown, carets = str(info.value).splitlines()[1:]
    assert shown.startswith("  ...")
    assert shown.endswith("...")
    assert len(shown) < 100
    assert shown[len(carets) - 1] == source[1000]


def test_error_positions_count_characters_not_bytes() -> None:
    """Columns are in characters, also after non-ASCII text."""
    with pytest.raises(ExpressionError) as info:
        compile("tempé + speed.real", names=["tempé", "speed"])
    assert info.value.offset == 9
    assert str(info.value).splitlines()[2] == "  " + " " * 8 + "^" * 10


def test_error_on_a_later_line_names_line_and_column() -> None:
    """In a multi-line expression the message gives the line and shows that line."""
    with pytest.raises(ExpressionError) as info:
        compile("(speed +\n  brake.x)", names=NAMES)
    lines = str(info.value).splitlines()
    assert lines[0].endswith("(line 2, column 3)")
    assert lines[1:] == ["    brake.x)", "    ^^^^^^^"]


def test_unknown_name_without_known_channels_says_so() -> None:
    """With no channels known, the unknown-name message says that instead of listing."""
    with pytest.raises(ExpressionError, match=r"unknown name 'speed' \(no channels are known"):
        compile("speed", names=())
    many = [f"c{i}" for i in range(40)]
    with pytest.raises(ExpressionError, match="40 channels are known"):
        compile("zz", names=many)


# --- properties -----------------------------------------------------------------------------

_BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
_UNARY = {"sqrt": np.sqrt, "abs": np.abs, "exp": np.exp, "sin": np.sin, "floor": np.floor}
Tree = tuple[str, Callable[[Cols], Any]]


def _leaf() -> st.SearchStrategy[Tree]:
    def column(name: str) -> Tree:
        return name, lambda c: c[name]

    def constant(x: float) -> Tree:
        return repr(x), lambda c: np.float64(x)

    return st.sampled_from(["a", "b", "c"]).map(column) | st.floats(0, 1e6).map(constant)


def _extend(children: st.SearchStrategy[Tree]) -> st.SearchStrategy[Tree]:
    def binary(op: str, left: Tree, right: Tree) -> Tree:
        fn, lf, rf = _BINARY[op], left[1], right[1]
        return f"({left[0]} {op} {right[0]})", lambda c: fn(lf(c), rf(c))

    def unary(name: str, arg: Tree) -> Tree:
        fn, af = _UNARY[name], arg[1]
        return f"{name}({arg[0]})", lambda c: fn(af(c))

    def negate(arg: Tree) -> Tree:
        af = arg[1]
        return f"-{arg[0]}", lambda c: -af(c)

    return (
        st.builds(binary, st.sampled_from(sorted(_BINARY)), children, children)
        | st.builds(unary, st.sampled_from(sorted(_UNARY)), children)
        | st.builds(negate, children)
    )


@settings(max_examples=200, deadline=None)
@given(
    tree=st.recursive(_leaf(), _extend, max_leaves=12),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 20),
)
def test_random_arithmetic_equals_numpy(tree: Tree, seed: int, n: int) -> None:
    """Random arithmetic over random columns gives exactly what numpy gives (seed in the report)."""
    source, reference = tree
    rng = np.random.default_rng(seed)
    cols = {name: rng.normal(0, 100, n) for name in "abc"}
    result = compile(source, names="abc").evaluate(cols)
    with np.errstate(all="ignore"):
        want = np.broadcast_to(reference(cols), (n,))
    np.testing.assert_array_equal(result, want)


_TOKENS = [
    "a", "b", "1", "2.5", "1e400", " + ", "-", "*", "**", "/", "//", "%", "(", ")", " < ", ">=",
    "==", "&", "|", "~", "not ", " and ", " or ", " if ", " else ", ", ", "sqrt", "min", "max",
    "where", "clip", "round", "log", "pi", "True", ".", "[", "]", "'s'", "lambda", ":", "=",
    "\n", "é", "x", "import ", "__import__", "\t",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(st.sampled_from(_TOKENS), max_size=20), n=st.integers(0, 5))
def test_any_text_compiles_and_evaluates_or_raises_expression_error(
    parts: list[str], n: int
) -> None:
    """Arbitrary token soup either evaluates to a length-n array or raises ExpressionError."""
    source = "".join(parts)
    try:
        expr = compile(source, names=["a", "b"])
    except ExpressionError as e:
        lines = str(e).splitlines()
    else:
        result = expr.evaluate({"a": np.linspace(-2, 2, n), "b": np.arange(n) % 2 == 0})
        assert result.shape == (n,)
        return
    assert len(lines) == 3
    assert lines[2].strip(" ^") == ""
