"""Tests of source manifests: loading, validation errors, and mapping raw columns to channels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pitwire.model.channels import STANDARD, Channel
from pitwire.model.expr import ExpressionError
from pitwire.model.manifest import Manifest, ManifestError, load_builtin

SEED_FRAMES = json.loads(
    """[
    {"packetId": 101, "gas": 0.5, "brake": 0.0, "fuel": 41.25, "gear": 3, "rpms": 7200,
     "steerAngle": -0.125, "speedKmh": 187.33, "extra": 1},
    {"packetId": 102, "gas": 1.0, "brake": 0.25, "fuel": 41.2, "gear": 4, "rpms": 8100,
     "steerAngle": 0.5, "speedKmh": 190.01, "extra": 2}
]"""
)


def _columns(rows: list[dict[str, float]]) -> dict[str, np.ndarray]:
    return {key: np.array([r[key] for r in rows], np.float64) for key in rows[0]}


def _manifest(body: str) -> Manifest:
    return Manifest.loads('[source]\nname = "test"\n' + body, origin="test.toml")


def test_seed_manifest_loads_with_the_documented_channels() -> None:
    """The seed manifest maps the original JSON frame fields onto standard channels."""
    seed = load_builtin("seed")
    assert seed.name == "seed"
    assert seed.origin == "seed.toml"
    assert list(seed.channels) == [
        "packet_id", "throttle", "brake", "fuel", "gear", "rpm", "steer", "speed",
    ]  # fmt: skip
    assert seed.raw_fields == (
        "packetId", "gas", "brake", "fuel", "gear", "rpms", "steerAngle", "speedKmh",
    )  # fmt: skip
    packet_id = seed.channels["packet_id"]
    assert (packet_id.unit, packet_id.dtype, packet_id.resolution) == ("", "f8", None)
    assert (packet_id.lo, packet_id.hi) == (0, np.inf)
    for name in list(seed.channels)[1:]:
        assert seed.channels[name] == STANDARD[name]
    assert all((f.scale, f.offset) == (1.0, 0.0) for f in seed.fields)


def test_seed_manifest_maps_a_raw_frame_dict() -> None:
    """Raw JSON frames become channel columns in each channel's dtype; extra fields are ignored."""
    out = load_builtin("seed").apply(_columns(SEED_FRAMES))
    assert list(out) == list(load_builtin("seed").channels)
    assert out["packet_id"].dtype == np.float64
    assert out["packet_id"].tolist() == [101, 102]
    assert out["speed"].dtype == np.float32
    np.testing.assert_array_equal(out["speed"], np.array([187.33, 190.01], np.float32))
    np.testing.assert_array_equal(out["throttle"], np.array([0.5, 1.0], np.float32))
    np.testing.assert_array_equal(out["rpm"], [7200, 8100])
    np.testing.assert_array_equal(out["gear"], [3, 4])
    np.testing.assert_array_equal(out["steer"], np.array([-0.125, 0.5], np.float32))
    assert "extra" not in out


def test_apply_never_returns_the_input_arrays() -> None:
    """An unscaled field is still a copy, so changing the output leaves the raw input alone."""
    raw = _columns(SEED_FRAMES)
    out = load_builtin("seed").apply(raw)
    out["packet_id"][:] = 0
    assert raw["packetId"].tolist() == [101, 102]


def test_scale_and_offset_map_raw_units_to_the_channel_unit() -> None:
    """channel = raw * scale + offset, computed in float64 and stored in the channel's dtype."""
    manifest = _manifest(
        """
        [[field]]
        raw = "speed_ms"
        channel = "speed"
        scale = 3.6
        [[field]]
        raw = "tyre_k"
        channel = "tyre_temp_fl"
        offset = -273.15
        [[field]]
        raw = "boost_kpa"
        channel = "boost"
        unit = "bar"
        dtype = "f8"
        scale = 0.01
        offset = -1
        """
    )
    raw = {
        "speed_ms": np.array([0.0, 10.0, 83.33]),
        "tyre_k": np.array([373.15, 300.0, 0.0], np.float32),
        "boost_kpa": np.array([100, 250, 180], np.int32),
    }
    out = manifest.apply(raw)
    np.testing.assert_array_equal(out["speed"], (raw["speed_ms"] * 3.6).astype(np.float32))
    want_temp = (raw["tyre_k"].astype(np.float64) - 273.15).astype(np.float32)
    np.testing.assert_array_equal(out["tyre_temp_fl"], want_temp)
    assert out["boost"].dtype == np.float64
    np.testing.assert_allclose(out["boost"], [0.0, 1.5, 0.8])
    assert manifest.channels["boost"] == Channel(name="boost", unit="bar", dtype="f8")


def test_derived_channels_chain_in_order() -> None:
    """A derived channel may use fields and earlier derived channels, and comes after fields."""
    manifest = _manifest(
        """
        [[derived]]
        channel = "g_total"
        unit = "g"
        expr = "sqrt(g_lat**2 + g_lon**2)"
        [[derived]]
        channel = "accel"
        unit = "m/s²"
        dtype = "f8"
        expr = "g_total * g"
        [[field]]
        raw = "gLat"
        channel = "g_lat"
        [[field]]
        raw = "gLon"
        channel = "g_lon"
        [[derived]]
        channel = "braking"
        unit = ""
        expr = "g_lon < -0.5"
        """
    )
    assert list(manifest.channels) == ["g_lat", "g_lon", "g_total", "accel", "braking"]
    assert manifest.derived[1].expression.names == ("g_total",)
    out = manifest.apply({"gLat": np.array([3.0, 0.0]), "gLon": np.array([-4.0, 1.0])})
    np.testing.assert_array_equal(out["g_total"], np.array([5.0, 1.0], np.float32))
    assert out["accel"].dtype == np.float64
    np.testing.assert_allclose(out["accel"], [5 * 9.80665, 9.80665], rtol=1e-6)
    assert out["braking"].dtype == np.float32
    assert out["braking"].tolist() == [1.0, 0.0]


def test_derived_may_compute_a_standard_channel() -> None:
    """A derived channel can be a standard one, and takes its unit and dtype from STANDARD."""
    manifest = _manifest(
        """
        [[field]]
        raw = "vx"
        channel = "vx"
        unit = "m/s"
        [[field]]
        raw = "vy"
        channel = "vy"
        unit = "m/s"
        [[derived]]
        channel = "speed"
        description = "ground speed from the velocity vector"
        expr = "hypot(vx, vy) * 3.6"
        """
    )
    speed = manifest.channels["speed"]
    assert (speed.unit, speed.resolution) == ("km/h", 0.01)
    assert speed.description == "ground speed from the velocity vector"
    out = manifest.apply({"vx": np.array([3.0]), "vy": np.array([4.0])})
    assert out["speed"].tolist() == [18.0]


def test_constant_derived_channel_without_fields_has_length_zero() -> None:
    """A manifest with only constant derived channels yields empty columns."""
    manifest = _manifest('[[derived]]\nchannel = "one"\nunit = ""\nexpr = "1"\n')
    assert manifest.apply({})["one"].shape == (0,)


def test_load_reads_a_file_and_names_it_in_errors(tmp_path: Path) -> None:
    """Manifest.load reads a path; its errors start with that path."""
    good = tmp_path / "good.toml"
    good.write_text('[source]\nname = "g"\n[[field]]\nraw = "v"\nchannel = "speed"\n')
    assert list(Manifest.load(good).channels) == ["speed"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[source]\nname = "b"\n[[field]]\nraw = "v"\n')
    with pytest.raises(ManifestError, match=f"^{bad}: field\\[0\\]: missing key 'channel'"):
        Manifest.load(bad)
    with pytest.raises(ManifestError, match="cannot read the manifest"):
        Manifest.load(tmp_path / "missing.toml")


def test_load_builtin_rejects_unknown_and_path_like_names() -> None:
    """An unknown builtin lists the known ones; a name that is not an identifier is refused."""
    with pytest.raises(ManifestError, match=r"no builtin manifest 'nope' \(there are: .*seed"):
        load_builtin("nope")
    with pytest.raises(ManifestError, match="must be an identifier"):
        load_builtin("../seed")


@pytest.mark.parametrize(
    ("body", "problems"),
    [
        ("[sorce]\nname = 'x'", ["test.toml: unknown section 'sorce'", "did you mean 'source'"]),
        (
            '[[field]]\nraw = "a"\nchannel = "speed"\nscal = 2',
            ["test.toml: field[0]: unknown key 'scal'", "did you mean 'scale'"],
        ),
        ('[[field]]\nchannel = "speed"', ["field[0]: missing key 'raw'"]),
        ('[[field]]\nraw = "a"', ["field[0]: missing key 'channel'"]),
        ('[[field]]\nraw = "a"\nchannel = "speed"\nscale = "x"', ["key 'scale': Expected float"]),
        ('[[field]]\nraw = "a"\nchannel = "speed"\nscale = inf', ["scale must be a finite"]),
        ('[[field]]\nraw = "a"\nchannel = "c"\nunit = ""\ndtype = "f2"', ["key 'dtype'"]),
        ("[[field]]\nraw = 1", ["field[0]: key 'raw': Expected str, got int"]),
        ('[field]\nraw = "a"', ["'field' must be an array of tables: write [[field]]"]),
        (
            '[[field]]\nraw = "a"\nchannel = "speed"\nunit = "m/s"',
            [
                "field[0] (raw 'a' -> channel 'speed')",
                "standard channel 'speed' has unit 'km/h', not 'm/s'",
                "convert with scale",
            ],
        ),
        (
            '[[field]]\nraw = "a"\nchannel = "speed"\nresolution = 0.1',
            ["standard channel 'speed' has resolution 0.01, not 0.1"],
        ),
        (
            '[[field]]\nraw = "a"\nchannel = "rpm"\ndtype = "f8"',
            ["standard channel 'rpm' has dtype 'f4', not 'f8'"],
        ),
        (
            '[[field]]\nraw = "a"\nchannel = "speed"\n[[field]]\nraw = "b"\nchannel = "speed"',
            ["field[1] (raw 'b' -> channel 'speed')", "'speed' is already defined by field[0]"],
        ),
        (
            '[[field]]\nraw = "a"\nchannel = "speed"\n[[field]]\nraw = "a"\nchannel = "rpm"',
            ["field[1]", "raw field 'a' is already mapped by field[0]", "[[derived]]"],
        ),
        (
            '[[field]]\nraw = "a"\nchannel = "speed"\n'
            '[[derived]]\nchannel = "speed"\nexpr = "speed * 2"',
            ["derived[0] (channel 'speed'): channel 'speed' is already defined by field[0]"],
        ),
        (
            '[[field]]\nraw = "a"\nchannel = "boost"',
            ["channel 'boost' is not a standard channel, so it must declare its unit"],
        ),
        (
            '[[field]]\nraw = "a"\nchannel = "Boost!"\nunit = "bar"',
            ["channel name 'Boost!' must be letters, digits and '_'"],
        ),
        ('[[field]]\nraw = "a"\nchannel = "c"\nunit = ""\nlo = 2\nhi = 1', ["lo 2.0 > hi 1.0"]),
        ('[[field]]\nraw = "a"\nchannel = "c"\nunit = ""\nlo = nan', ["lo must be a number"]),
        (
            '[[field]]\nraw = "a"\nchannel = "speed"\n'
            '[[derived]]\nchannel = "q"\nunit = ""\nexpr = "speed.real"',
            [
                "derived[0] (channel 'q'): bad expression: attribute access is not allowed",
                "  speed.real\n  ^^^^^^^^^^",
            ],
        ),
        (
            '[[field]]\nraw = "a"\nchannel = "speed"\n'
            '[[derived]]\nchannel = "q"\nunit = ""\nexpr = "y * 2"\n'
            '[[derived]]\nchannel = "y"\nunit = ""\nexpr = "speed"',
            ["derived[0] (channel 'q'): bad expression: unknown name 'y'", "known channels: speed"],
        ),
        ('[[derived]]\nchannel = "q"\nunit = ""', ["derived[0]: missing key 'expr'"]),
    ],
)
def test_invalid_manifest_names_file_section_index_and_problem(
    body: str, problems: list[str]
) -> None:
    """Each invalid manifest raises ManifestError naming where it is and what is wrong."""
    with pytest.raises(ManifestError) as info:
        _manifest(body + "\n")
    for problem in problems:
        assert problem in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_source_invalid_toml_and_bad_tables_are_reported() -> None:
    """A missing [source], broken TOML or a non-table entry names the file and the problem."""
    with pytest.raises(ManifestError, match=r"^x.toml: the \[source\] table is missing"):
        Manifest.loads('[[field]]\nraw = "a"\nchannel = "speed"\n', origin="x.toml")
    with pytest.raises(ManifestError, match=r"^x.toml: invalid TOML: .*line 1"):
        Manifest.loads("[source\n", origin="x.toml")
    with pytest.raises(ManifestError, match=r"\[source\]: unknown key 'nmae'"):
        Manifest.loads('[source]\nnmae = "x"\n', origin="x.toml")
    with pytest.raises(ManifestError, match=r"^x.toml: field\[0\]: must be a table, not int"):
        Manifest.loads('field = [1]\n[source]\nname = "x"\n', origin="x.toml")


def test_bad_expression_keeps_the_expression_error_as_cause() -> None:
    """The wrapped ExpressionError stays reachable as the ManifestError's cause."""
    with pytest.raises(ManifestError) as info:
        _manifest('[[derived]]\nchannel = "q"\nunit = ""\nexpr = "open(1)"\n')
    assert isinstance(info.value.__cause__, ExpressionError)
    assert info.value.__cause__.offset == 1


def test_standard_channel_may_repeat_its_attributes() -> None:
    """Declaring a standard channel's own unit, dtype and range again is not a conflict."""
    manifest = _manifest(
        '[[field]]\nraw = "v"\nchannel = "speed"\nunit = "km/h"\ndtype = "f4"\nlo = 0\nhi = 600\n'
    )
    assert manifest.channels["speed"] == STANDARD["speed"]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (
            {"gas": np.ones(2)},
            "seed.toml: field[0] (channel 'packet_id'): raw field 'packetId' is missing",
        ),
        (
            {**_columns(SEED_FRAMES), "gas": np.ones(3)},
            "field[1] (channel 'throttle'): raw field 'gas' has 3 values, not 2",
        ),
        (
            {**_columns(SEED_FRAMES), "gas": np.ones((2, 1))},
            "raw field 'gas' must be a 1-d array of numbers",
        ),
    ],
)
def test_apply_rejects_raw_columns_that_do_not_fit(
    raw: dict[str, np.ndarray], problem: str
) -> None:
    """A missing, ragged or malformed raw field raises ManifestError saying which."""
    with pytest.raises(ManifestError) as info:
        load_builtin("seed").apply(raw)
    assert problem in str(info.value)


def test_apply_matrix_gives_what_apply_gives():
    """The matrix path (decoders) yields the same channel values and dtypes as apply()."""
    import numpy as np

    from pitwire.model.manifest import Manifest

    m = Manifest.loads(
        """
        [source]
        name = "t"
        [[field]]
        raw = "v"
        channel = "speed"
        scale = 3.6
        [[field]]
        raw = "g"
        channel = "gear"
        offset = -1
        [[field]]
        raw = "p"
        channel = "packet_id"
        unit = ""
        dtype = "f8"
        [[field]]
        raw = "b"
        channel = "brake"
        [[derived]]
        channel = "fast"
        unit = ""
        expr = "speed > 100"
        """
    )
    rng = np.random.default_rng(5)
    matrix = np.column_stack(
        [rng.uniform(0, 90, 7), rng.integers(0, 8, 7), np.arange(7) + 2**40, [-0.0] * 7]
    ).astype(np.float64)
    by_matrix = m.apply_matrix(matrix)
    by_columns = m.apply(
        {"v": matrix[:, 0], "g": matrix[:, 1], "p": matrix[:, 2], "b": matrix[:, 3]}
    )
    assert list(by_matrix) == list(by_columns) == ["speed", "gear", "packet_id", "brake", "fast"]
    for name in by_matrix:
        assert by_matrix[name].dtype == by_columns[name].dtype
        assert by_matrix[name].tobytes() == by_columns[name].tobytes(), name
    assert np.signbit(by_matrix["brake"]).all()  # -0.0 pedals stay -0.0
