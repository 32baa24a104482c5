"""Expressions for derived channels: parsed, checked against a whitelist, evaluated on numpy.

``compile("sqrt(g_lat**2 + g_lon**2)", names=channels)`` parses the text with
``ast.parse(mode="eval")`` and walks the tree. The walk accepts only the constructs below and
builds, as it goes, a tree of closures that call numpy directly: no Python ``eval`` runs and
nothing outside the whitelist is reachable. ``Expression.evaluate(columns)`` runs the closures
vectorized over numpy columns.

Accepted:

- numbers, ``True``/``False``; channel names from ``names``; the constants ``pi``, ``e`` and
  ``g`` (standard gravity [m/s²]); a channel of the same name shadows a constant
- ``+ - * / // % **``, unary ``-`` and ``+``; comparisons, chained too (``0 < x < 1``)
- ``not``, ``and``, ``or`` element-wise (all operands are evaluated); ``& | ~`` on booleans
- ``a if cond else b`` element-wise (``where(cond, a, b)``; both branches are evaluated)
- calls by plain name, positional arguments only, to the functions in ``FUNCTIONS``

Semantics are numpy's, in float64: columns of any real dtype are read as float64 (a boolean
counts as 0 or 1), ``x / 0`` gives inf or nan without a warning, the result has the length of
the input columns (a constant gives a full-length array). Comparisons and logic give a boolean
array, everything else a float64 one.

Exceptions::

    ValueError
     └── ExpressionError   the text is not an accepted expression (the message names the
                           construct and points at it with a caret line), or evaluate() got
                           columns that do not fit
"""

from __future__ import annotations

import ast
import difflib
import functools
import math
import operator
from collections.abc import Callable, Collection, Mapping
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt

from pitwire.model.exprtext import MAX_DEPTH, MAX_LENGTH, ExpressionError, SourceText

__all__ = [
    "CONSTANTS",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Expression",
    "ExpressionError",
    "compile",
]

CONSTANTS: Mapping[str, float] = {"pi": math.pi, "e": math.e, "g": 9.80665}
"""Named constants an expression may use: pi, e, standard gravity g [m/s²]."""

Env = Mapping[str, npt.NDArray[Any]]
Fn = Callable[[Env], Any]


def _fold(ufunc: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    return lambda *args: functools.reduce(ufunc, args)


# name -> (fewest arguments, most arguments or -1 for any, implementation)
_SAME_IN_NUMPY = (
    "abs",
    "sqrt",
    "exp",
    "log",
    "log10",
    "sin",
    "cos",
    "tan",
    "floor",
    "ceil",
    "sign",
)
_FUNCS: dict[str, tuple[int, int, Callable[..., Any]]] = {
    **{name: (1, 1, getattr(np, name)) for name in _SAME_IN_NUMPY},
    "min": (2, -1, _fold(np.minimum)),
    "max": (2, -1, _fold(np.maximum)),
    "atan2": (2, 2, np.arctan2),
    "hypot": (2, 2, np.hypot),
    "round": (1, 2, np.round),
    "clip": (3, 3, np.clip),
    "where": (3, 3, np.where),
    "deg": (1, 1, np.degrees),
    "rad": (1, 1, np.radians),
}
FUNCTIONS: frozenset[str] = frozenset(_FUNCS)
"""Functions an expression may call (min and max take two or more arguments, element-wise)."""

_ARITH: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_LOGIC: dict[type[ast.operator], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.BitAnd: ("&", np.logical_and),
    ast.BitOr: ("|", np.logical_or),
}
_REJECTED_OPS: dict[type[ast.operator], tuple[str, str]] = {
    ast.BitXor: ("^", " (use ** for powers)"),
    ast.LShift: ("<<", ""),
    ast.RShift: (">>", ""),
    ast.MatMult: ("@", ""),
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_REJECTED_NODES: dict[type[ast.AST] | tuple[type[ast.AST], ...], str] = {
    ast.Attribute: "attribute access is not allowed",
    ast.Subscript: "subscripts are not allowed",
    ast.Lambda: "lambda functions are not allowed",
    (ast.ListComp, ast.SetComp, ast.DictComp): "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.NamedExpr: "assignment expressions (:=) are not allowed",
    ast.Starred: "'*' unpacking is not allowed",
    (ast.List, ast.Tuple, ast.Set, ast.Dict): "lists, tuples, sets and dicts are not allowed",
}


class Expression:
    """A checked expression, ready to evaluate on numpy columns.

    source: the text it was compiled from
    names: the channels it reads, in order of first use
    """

    __slots__ = ("_fn", "names", "source")

    def __init__(self, source: str, names: tuple[str, ...], fn: Fn) -> None:
        self.source = source
        self.names = names
        self._fn = fn

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"

    def evaluate(
        self, columns: Mapping[str, npt.ArrayLike], *, n: int | None = None
    ) -> npt.NDArray[Any]:
        """The expression over ``columns``, element by element: an array of length ``n``.

        ``n`` defaults to the length of the columns (all must have it); pass it when the
        expression reads no column and ``columns`` is empty.
        """
        env: dict[str, npt.NDArray[Any]] = {}
        for name in self.names:
            if name not in columns:
                raise ExpressionError(f"{self.source!r} reads {name!r}, missing from the columns")
            arr = np.asarray(columns[name])
            if arr.ndim != 1 or arr.dtype.kind not in "biuf":
                raise ExpressionError(
                    f"column {name!r} must be a 1-d array of numbers, not {arr.dtype} {arr.shape}"
                )
            env[name] = arr.astype(np.float64, copy=False)
        if n is None:
            first = next(iter(env.values()), None)
            if first is None and columns:
                first = np.asarray(next(iter(columns.values())))
            if first is None:
                raise ExpressionError(f"{self.source!r} reads no column: pass n= for its length")
            n = len(first)
        for name, arr in env.items():
            if len(arr) != n:
                raise ExpressionError(f"column {name!r} has length {len(arr)}, expected {n}")
        with np.errstate(all="ignore"):
            try:
                out = np.asarray(self._fn(env))
            except (TypeError, ValueError, ArithmeticError) as e:  # pragma: no cover - defensive
                raise ExpressionError(f"cannot evaluate {self.source!r}: {e}") from e
        if out.shape != (n,):
            return np.broadcast_to(out, (n,)).copy()
        if any(out is col for col in env.values()):
            return out.copy()  # never hand back the caller's array
        return out


def compile(source: str, *, names: Collection[str]) -> Expression:
    """Check ``source`` against the whitelist and build an ``Expression``.

    ``names`` are the channels the expression may read. Raises ``ExpressionError`` naming the
    first construct that is not accepted and pointing at it.
    """
    text = SourceText(source)
    tree = text.parse()
    builder = _Builder(text, frozenset(names))
    fn, _ = builder.build(tree.body, 1)
    return Expression(source, tuple(builder.used), fn)


def _as_float(fn: Fn) -> Fn:
    """``fn`` with a boolean result turned into 0.0/1.0 (numpy's bool arithmetic surprises)."""
    return lambda env: np.asarray(fn(env), dtype=np.float64)


class _Builder:
    """Walks the tree, rejecting what is not whitelisted and building closures for the rest.

    ``build`` returns the closure and whether its result is boolean.
    """

    def __init__(self, text: SourceText, names: frozenset[str]) -> None:
        self.text = text
        self.names = names
        self.used: dict[str, None] = {}  # ordered set

    def fail(self, problem: str, node: ast.AST) -> NoReturn:
        raise self.text.error_node(problem, node)

    def build(self, node: ast.expr, depth: int) -> tuple[Fn, bool]:
        if depth > MAX_DEPTH:
            self.fail(f"expression is nested too deeply (limit {MAX_DEPTH} levels)", node)
        match node:
            case ast.Constant(value=value):
                return self._constant(node, value)
            case ast.Name(id=name):
                return self._name(node, name)
            case ast.BinOp(left=left, op=op, right=right):
                return self._binop(node, left, op, right, depth)
            case ast.UnaryOp(op=op, operand=operand):
                fn, is_bool = self.build(operand, depth + 1)
                if isinstance(op, ast.Not):
                    return (lambda env: np.logical_not(fn(env))), True
                if isinstance(op, ast.Invert):
                    if not is_bool:
                        self.fail(
                            "'~' needs a boolean operand such as a comparison: ~(speed > 100); "
                            f"got {self.text.segment(operand)!r}",
                            node,
                        )
                    return (lambda env: np.logical_not(fn(env))), True
                num = _as_float(fn) if is_bool else fn
                if isinstance(op, ast.USub):
                    return (lambda env: operator.neg(num(env))), False
                return (lambda env: operator.pos(num(env))), False
            case ast.BoolOp(op=op, values=values):
                fns = [self.build(v, depth + 1)[0] for v in values]
                combine = np.logical_and if isinstance(op, ast.And) else np.logical_or
                return (lambda env: functools.reduce(combine, (f(env) for f in fns))), True
            case ast.Compare(left=left, ops=ops, comparators=comparators):
                return self._compare(node, left, ops, comparators, depth)
            case ast.IfExp(test=test, body=body, orelse=orelse):
                cond, _ = self.build(test, depth + 1)
                (yes, yes_bool), (no, no_bool) = (
                    self.build(body, depth + 1),
                    self.build(orelse, depth + 1),
                )
                return (lambda env: np.where(cond(env), yes(env), no(env))), yes_bool and no_bool
            case ast.Call():
                return self._call(node, depth)
        for kind, problem in _REJECTED_NODES.items():
            if isinstance(node, kind):
                self.fail(f"{problem}: {self.text.segment(node)!r}", node)
        self.fail(f"{type(node).__name__} is not allowed: {self.text.segment(node)!r}", node)

    def _constant(self, node: ast.expr, value: object) -> tuple[Fn, bool]:
        if isinstance(value, bool):
            const_bool = np.bool_(value)
            return (lambda env: const_bool), True
        if isinstance(value, int | float):
            try:
                const = np.float64(value)
            except OverflowError:
                self.fail(f"number is too large: {self.text.segment(node)!r}", node)
            return (lambda env: const), False
        if value is None or value is Ellipsis:
            self.fail(f"{self.text.segment(node)!r} is not allowed", node)
        what = {str: "string constants", bytes: "bytes constants", complex: "complex numbers"}
        label = what.get(type(value), f"{type(value).__name__} constants")
        self.fail(f"{label} are not allowed: {self.text.segment(node)!r}", node)

    def _name(self, node: ast.expr, name: str) -> tuple[Fn, bool]:
        if name in self.names:
            self.used[name] = None
            return (lambda env: env[name]), False
        if name in CONSTANTS:
            const = np.float64(CONSTANTS[name])
            return (lambda env: const), False
        if name in _FUNCS:
            self.fail(f"function {name!r} must be called, e.g. {name}(x)", node)
        hints = []
        close = difflib.get_close_matches(name, [*self.names, *CONSTANTS], n=3)
        if close:
            hints.append(f"did you mean {' or '.join(map(repr, close))}?")
        if not self.names:
            hints.append("no channels are known here")
        elif len(self.names) <= 12:
            hints.append(f"known channels: {', '.join(sorted(self.names))}")
        else:
            hints.append(f"{len(self.names)} channels are known")
        self.fail(f"unknown name {name!r} ({'; '.join(hints)})", node)

    def _binop(
        self, node: ast.BinOp, left: ast.expr, op: ast.operator, right: ast.expr, depth: int
    ) -> tuple[Fn, bool]:
        if type(op) in _REJECTED_OPS:
            symbol, hint = _REJECTED_OPS[type(op)]
            spot = self._operator_node(node, symbol)
            self.fail(f"operator {symbol!r} is not allowed{hint}", spot)
        (lhs, l_bool), (rhs, r_bool) = self.build(left, depth + 1), self.build(right, depth + 1)
        if type(op) in _LOGIC:
            symbol, logic = _LOGIC[type(op)]
            if not (l_bool and r_bool):
                self.fail(
                    f"{symbol!r} needs boolean operands such as comparisons in parentheses, "
                    f"e.g. (brake > 0) {symbol} (throttle > 0); got {self.text.segment(node)!r}",
                    node,
                )
            return (lambda env: logic(lhs(env), rhs(env))), True
        arith = _ARITH[type(op)]
        lhs, rhs = _as_float(lhs) if l_bool else lhs, _as_float(rhs) if r_bool else rhs
        return (lambda env: arith(lhs(env), rhs(env))), False

    def _operator_node(self, node: ast.BinOp, symbol: str) -> ast.AST:
        """A stand-in node spanning the operator ``symbol`` between the operands, if found."""
        left, right = node.left, node.right
        if left.end_lineno == right.lineno and left.end_col_offset is not None:
            line = self.text.lines[right.lineno - 1].encode()
            at = line.find(symbol.encode(), left.end_col_offset, right.col_offset)
            if at >= 0:
                spot = ast.Pass(lineno=right.lineno, col_offset=at)
                spot.end_lineno, spot.end_col_offset = right.lineno, at + len(symbol)
                return spot
        return node

    def _compare(
        self,
        node: ast.Compare,
        left: ast.expr,
        ops: list[ast.cmpop],
        comparators: list[ast.expr],
        depth: int,
    ) -> tuple[Fn, bool]:
        for op in ops:
            if type(op) not in _COMPARE:
                word = {ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}
                self.fail(f"{word.get(type(op), '?')!r} comparisons are not allowed", node)
        fns = [self.build(e, depth + 1)[0] for e in [left, *comparators]]
        cmps = [_COMPARE[type(op)] for op in ops]

        def chained(env: Env) -> Any:
            values = [f(env) for f in fns]  # each operand once, as Python does
            parts = (c(values[i], values[i + 1]) for i, c in enumerate(cmps))
            return functools.reduce(np.logical_and, parts)

        return chained, True

    def _call(self, node: ast.Call, depth: int) -> tuple[Fn, bool]:
        func = node.func
        if not isinstance(func, ast.Name):
            self.build(func, depth + 1)  # reports attribute access, lambdas, ... by name
            called = self.text.segment(func)
            self.fail(f"only whitelisted functions can be called by name, not {called!r}", func)
        name = func.id
        if name not in _FUNCS:
            if name in self.names:
                self.fail(f"channel {name!r} is not a function", func)
            allowed = ", ".join(sorted(_FUNCS))
            self.fail(f"call to {name!r} is not allowed (allowed functions: {allowed})", func)
        for kw in node.keywords:
            what = "'**' arguments are" if kw.arg is None else "keyword arguments are"
            self.fail(f"{what} not allowed: {self.text.segment(kw)!r}", kw)
        fewest, most, impl = _FUNCS[name]
        given = len(node.args)
        if name == "round" and given == 2:
            return self._round(node, depth)
        built = [self.build(arg, depth + 1) for arg in node.args]  # rejects bad arguments first
        if given < fewest or (most >= 0 and given > most):
            want = f"{fewest}" if fewest == most else f"{fewest} to {most}"
            want = f"{fewest} or more" if most < 0 else want
            plural = "" if want == "1" else "s"
            self.fail(f"{name}() takes {want} argument{plural} ({given} given)", node)
        if name == "where":
            (cond, _), (yes, yes_bool), (no, no_bool) = built
            return (lambda env: np.where(cond(env), yes(env), no(env))), yes_bool and no_bool
        fns = [_as_float(f) if is_bool else f for f, is_bool in built]
        if len(fns) == 1:
            only = fns[0]
            return (lambda env: impl(only(env))), False
        return (lambda env: impl(*(f(env) for f in fns))), False

    def _round(self, node: ast.Call, depth: int) -> tuple[Fn, bool]:
        digits_node = node.args[1]
        try:
            digits = ast.literal_eval(digits_node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            digits = None
        if type(digits) is not int or abs(digits) > 15:
            self.fail("round() digits must be a whole number from -15 to 15", digits_node)
        fn, is_bool = self.build(node.args[0], depth + 1)
        num = _as_float(fn) if is_bool else fn
        return (lambda env: np.round(num(env), digits)), False
