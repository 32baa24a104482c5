"""Source manifests: a TOML file per source that maps raw fields to channels and derives more.

.. code-block:: toml

    [source]
    name = "seed"
    description = "..."

    [[field]]
    raw = "speedKmh"      # the raw field name from the parser
    channel = "speed"     # a STANDARD channel: unit, dtype, resolution and range come from it
    scale = 1.0           # channel = raw * scale + offset
    offset = 0.0

    [[field]]
    raw = "boost"
    channel = "boost"     # a channel of the source's own must declare its unit (may be "")
    unit = "bar"          # and may declare dtype, resolution, lo, hi, description

    [[derived]]
    channel = "g_total"
    unit = "g"
    expr = "sqrt(g_lat**2 + g_lon**2)"   # see pitwire.model.expr; earlier channels only

A standard channel may repeat its standard attributes but not change them (a source reading
m/s maps to ``speed`` with ``scale = 3.6``); it may reword the description. The channels of a
manifest are its fields, then its derived channels, in file order. A raw field maps to one
channel; a second view of it is a derived channel.

Exceptions::

    ValueError
     └── ManifestError   the manifest is invalid, or apply() got raw columns that do not fit;
                         the message names the file, the section and index, and the problem
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from pitwire.model.channels import STANDARD, Channel, ChannelSet, DType
from pitwire.model.expr import Expression, ExpressionError
from pitwire.model.expr import compile as compile_expression
from pitwire.model.frames import Column

BUILTIN_PACKAGE = "pitwire.sources.manifests"
"""The package holding the manifests shipped with pitwire (``{name}.toml``)."""


class ManifestError(ValueError):
    """A manifest is invalid, or raw columns do not fit it."""


@dataclass(frozen=True, slots=True)
class FieldMap:
    """Raw field ``raw`` becomes ``channel`` as ``raw * scale + offset`` in the channel's dtype."""

    raw: str
    channel: Channel
    scale: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True, slots=True)
class Derived:
    """Channel ``channel`` computed by ``expression`` from earlier channels."""

    channel: Channel
    expression: Expression


class Manifest:
    """A validated source manifest: ``channels`` (fields, then derived) and how to fill them."""

    __slots__ = ("_plan", "channels", "derived", "description", "fields", "name", "origin")

    def __init__(
        self,
        *,
        name: str,
        description: str = "",
        fields: tuple[FieldMap, ...],
        derived: tuple[Derived, ...] = (),
        origin: str = "<manifest>",
    ) -> None:
        self.name = name
        self.description = description
        self.fields = fields
        self.derived = derived
        self.origin = origin
        self.channels = ChannelSet([*(f.channel for f in fields), *(d.channel for d in derived)])
        self._plan: _Plan | None = None

    def __repr__(self) -> str:
        return f"Manifest({self.name!r}, channels={list(self.channels)})"

    @property
    def raw_fields(self) -> tuple[str, ...]:
        """The raw field names ``apply`` reads, in order."""
        return tuple(f.raw for f in self.fields)

    @classmethod
    def loads(cls, text: str, *, origin: str = "<string>") -> Manifest:
        """Parse and validate manifest TOML; ``origin`` names it in error messages."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ManifestError(f"{origin}: invalid TOML: {e}") from e
        return _build(data, origin)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Manifest:
        """Read, parse and validate the manifest file at ``path``."""
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ManifestError(f"{os.fspath(path)}: cannot read the manifest: {e}") from e
        return cls.loads(text, origin=os.fspath(path))

    def apply_matrix(self, matrix: npt.NDArray[np.float64]) -> dict[str, Column]:
        """The channel columns from a (frames x ``raw_fields``) float64 matrix, in a handful
        of numpy operations (for decoders' many-channel frames). Same values as ``apply``
        on the same raw numbers (-0.0 stays -0.0 where the field has no scale/offset)."""
        n, k = matrix.shape
        if k != len(self.fields):
            raise ManifestError(
                f"{self.origin}: the raw matrix has {k} columns, the manifest {len(self.fields)}"
            )
        plan = self._plan
        if plan is None:
            plan = self._plan = _Plan(self.fields)
        # Out-of-range values (a garbled packet) become inf in f4 channels, without a warning.
        with np.errstate(over="ignore", invalid="ignore"):
            if plan.scaled.size:
                matrix = matrix.copy()
                matrix[:, plan.scaled] = matrix[:, plan.scaled] * plan.scale + plan.offset
            blocks: dict[str, npt.NDArray[np.floating]] = {
                "f4": np.ascontiguousarray(matrix[:, plan.f4].T, dtype=np.float32),
                "f8": np.ascontiguousarray(matrix[:, plan.f8].T, dtype=np.float64),
            }
        out: dict[str, Column] = {}
        rows = {"f4": 0, "f8": 0}
        for f in self.fields:  # channel-major blocks: each column is a contiguous row
            dt = f.channel.dtype
            out[f.channel.name] = blocks[dt][rows[dt]]
            rows[dt] += 1
        for i, d in enumerate(self.derived):
            try:
                value = d.expression.evaluate(out, n=n)
            except ExpressionError as e:  # pragma: no cover - the manifest was checked
                where = f"{self.origin}: derived[{i}] (channel {d.channel.name!r})"
                raise ManifestError(f"{where}: {e}") from e
            out[d.channel.name] = value.astype(d.channel.dtype)
        return out

    def apply(self, raw: Mapping[str, npt.ArrayLike]) -> dict[str, Column]:
        """The channel columns, in ``channels`` order, from raw columns of equal length.

        Fields are ``raw * scale + offset`` in the channel's dtype; derived channels are
        evaluated in order on the channels before them. Raw fields the manifest does not map
        are ignored.
        """
        out: dict[str, Column] = {}
        n: int | None = None
        for i, f in enumerate(self.fields):
            where = f"{self.origin}: field[{i}] (channel {f.channel.name!r})"
            if f.raw not in raw:
                have = sorted(raw)
                listed = ", ".join(have) if len(have) <= 12 else f"{len(have)} fields"
                raise ManifestError(
                    f"{where}: raw field {f.raw!r} is missing from the input (it has {listed})"
                )
            col = np.asarray(raw[f.raw])
            if col.ndim != 1 or col.dtype.kind not in "biuf":
                raise ManifestError(
                    f"{where}: raw field {f.raw!r} must be a 1-d array of numbers, "
                    f"not {col.dtype} {col.shape}"
                )
            if n is None:
                n = len(col)
            elif len(col) != n:
                raise ManifestError(f"{where}: raw field {f.raw!r} has {len(col)} values, not {n}")
            dtype = np.dtype(f.channel.dtype)
            if f.scale == 1.0 and f.offset == 0.0:
                out[f.channel.name] = np.array(col, dtype=dtype)  # a copy, never the input
            else:
                scaled = col.astype(np.float64) * f.scale + f.offset
                out[f.channel.name] = scaled.astype(dtype)
        for i, d in enumerate(self.derived):
            try:
                value = d.expression.evaluate(out, n=n or 0)
            except ExpressionError as e:  # pragma: no cover - the manifest was checked
                where = f"{self.origin}: derived[{i}] (channel {d.channel.name!r})"
                raise ManifestError(f"{where}: {e}") from e
            out[d.channel.name] = value.astype(d.channel.dtype)
        return out


class _Plan:
    """``Manifest.apply_matrix``'s precomputed index vectors (one numpy op per step)."""

    __slots__ = ("f4", "f8", "offset", "scale", "scaled")

    def __init__(self, fields: tuple[FieldMap, ...]) -> None:
        scaled = [i for i, f in enumerate(fields) if f.scale != 1.0 or f.offset != 0.0]
        self.scaled = np.array(scaled, dtype=np.intp)
        self.scale = np.array([fields[i].scale for i in scaled], dtype=np.float64)
        self.offset = np.array([fields[i].offset for i in scaled], dtype=np.float64)
        self.f4 = np.array(
            [i for i, f in enumerate(fields) if f.channel.dtype == "f4"], dtype=np.intp
        )
        self.f8 = np.array(
            [i for i, f in enumerate(fields) if f.channel.dtype == "f8"], dtype=np.intp
        )


def load_builtin(name: str) -> Manifest:
    """The manifest shipped with pitwire as ``pitwire/sources/manifests/{name}.toml``."""
    folder = resources.files(BUILTIN_PACKAGE)
    if not name.isidentifier():
        raise ManifestError(f"builtin manifest name {name!r} must be an identifier")
    resource = folder.joinpath(f"{name}.toml")
    if not resource.is_file():
        known = sorted(r.name[:-5] for r in folder.iterdir() if r.name.endswith(".toml"))
        raise ManifestError(f"no builtin manifest {name!r} (there are: {', '.join(known)})")
    return Manifest.loads(resource.read_text(encoding="utf-8"), origin=f"{name}.toml")


class _SourceSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    description: str = ""


class _ChannelSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    channel: str
    unit: str | None = None
    dtype: DType | None = None
    resolution: float | None = None
    lo: float | None = None
    hi: float | None = None
    description: str | None = None


class _FieldSpec(_ChannelSpec, forbid_unknown_fields=True, kw_only=True):
    raw: str
    scale: float = 1.0
    offset: float = 0.0


class _DerivedSpec(_ChannelSpec, forbid_unknown_fields=True, kw_only=True):
    expr: str


_SECTIONS: dict[str, type[msgspec.Struct]] = {
    "source": _SourceSpec,
    "field": _FieldSpec,
    "derived": _DerivedSpec,
}


def _convert(entry: object, spec: type[Any], where: str) -> Any:
    """``entry`` as a ``spec`` struct, with msgspec's complaint reworded for a TOML author."""
    try:
        return msgspec.convert(entry, spec)
    except msgspec.ValidationError as e:
        problem, _, path = str(e).partition(" - at `$")
        key = path.lstrip(".").rstrip("`")
        fields = spec.__struct_fields__
        if problem.startswith("Object contains unknown field `"):
            unknown = problem.split("`")[1]
            close = difflib.get_close_matches(unknown, fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (keys: {', '.join(fields)})"
            problem = f"unknown key {unknown!r}{hint}"
        elif problem.startswith("Object missing required field `"):
            problem = f"missing key {problem.split('`')[1]!r}"
        elif problem.startswith("Expected `object`, got `") and not key:
            problem = f"must be a table, not {problem.split('`')[3]}"
        elif key:
            problem = f"key {key!r}: {problem.replace('`', '')}"
            problem += " (expected 'f4' or 'f8')" if key == "dtype" else ""
        raise ManifestError(f"{where}: {problem}") from None


def _build(data: dict[str, Any], origin: str) -> Manifest:
    for key in data:
        if key not in _SECTIONS:
            close = difflib.get_close_matches(key, _SECTIONS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "known: source, field, derived"
            raise ManifestError(f"{origin}: unknown section {key!r} ({hint})")
    if "source" not in data:
        raise ManifestError(f"{origin}: the [source] table is missing (it names the source)")
    source: _SourceSpec = _convert(data["source"], _SourceSpec, f"{origin}: [source]")
    for section in ("field", "derived"):
        if not isinstance(data.get(section, []), list):
            raise ManifestError(
                f"{origin}: {section!r} must be an array of tables: write [[{section}]]"
            )
    seen: dict[str, str] = {}  # channel name -> where it was defined
    raw_seen: dict[str, str] = {}
    fields: list[FieldMap] = []
    for i, entry in enumerate(data.get("field", [])):
        where = f"{origin}: field[{i}]"
        spec: _FieldSpec = _convert(entry, _FieldSpec, where)
        where = f"{where} (raw {spec.raw!r} -> channel {spec.channel!r})"
        if spec.raw in raw_seen:
            raise ManifestError(
                f"{where}: raw field {spec.raw!r} is already mapped by {raw_seen[spec.raw]}; "
                "use a [[derived]] channel for a second view of it"
            )
        for key, value in (("scale", spec.scale), ("offset", spec.offset)):
            if not math.isfinite(value):
                raise ManifestError(f"{where}: {key} must be a finite number, not {value}")
        channel = _channel(spec, where, seen)
        raw_seen[spec.raw], seen[channel.name] = f"field[{i}]", f"field[{i}]"
        fields.append(FieldMap(spec.raw, channel, spec.scale, spec.offset))
    derived: list[Derived] = []
    for i, entry in enumerate(data.get("derived", [])):
        where = f"{origin}: derived[{i}]"
        dspec: _DerivedSpec = _convert(entry, _DerivedSpec, where)
        where = f"{where} (channel {dspec.channel!r})"
        channel = _channel(dspec, where, seen)
        try:
            expression = compile_expression(dspec.expr, names=list(seen))
        except ExpressionError as e:
            raise ManifestError(f"{where}: bad expression: {e}") from e
        seen[channel.name] = f"derived[{i}]"
        derived.append(Derived(channel, expression))
    return Manifest(
        name=source.name,
        description=source.description,
        fields=tuple(fields),
        derived=tuple(derived),
        origin=origin,
    )


def _channel(spec: _ChannelSpec, where: str, seen: Mapping[str, str]) -> Channel:
    """The channel ``spec`` declares: a STANDARD one (checked) or one of the source's own."""
    name = spec.channel
    if name in seen:
        raise ManifestError(f"{where}: channel {name!r} is already defined by {seen[name]}")
    for key in ("resolution", "lo", "hi"):
        value = getattr(spec, key)
        if value is not None and math.isnan(value):
            raise ManifestError(f"{where}: {key} must be a number, not nan")
    declared = {
        key: getattr(spec, key)
        for key in ("unit", "dtype", "resolution", "lo", "hi", "description")
        if getattr(spec, key) is not None
    }
    standard = STANDARD.get(name)
    if standard is not None:
        for key, value in declared.items():
            if key != "description" and value != getattr(standard, key):
                fix = "convert with scale and offset, or " if key == "unit" else ""
                raise ManifestError(
                    f"{where}: standard channel {name!r} has {key} {getattr(standard, key)!r}, "
                    f"not {value!r}; {fix}use a channel name of the source's own"
                )
        description = declared.get("description", standard.description)
        return msgspec.structs.replace(standard, description=description)
    if spec.unit is None:
        raise ManifestError(
            f"{where}: channel {name!r} is not a standard channel, so it must declare its "
            'unit (unit = "" for counts and ratios)'
        )
    try:
        return Channel(name=name, **declared)
    except ValueError as e:
        raise ManifestError(f"{where}: {e}") from e
