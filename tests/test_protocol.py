"""The one protocol, checked on every registered state and result.

The list of analyses comes from one registry: every ``State`` subclass that
declares ``kind=`` is in ``fastevals._protocol.STATES`` once its module is
imported, and the modules are the ones ``fastevals/__init__.py`` maps public
names to. A new analysis is checked here by existing; it must give a
``_example()`` (constructor kwargs and a small input).
"""

from __future__ import annotations

import importlib
import inspect
import pickle
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastevals
from fastevals import _protocol as proto
from fastevals import _source as src
from fastevals._fold import check_backend, fold


def _analysis_modules() -> list[str]:
    return sorted({m for m in fastevals._LAZY.values() if importlib.util.find_spec(m) is not None})


for _m in _analysis_modules():
    importlib.import_module(_m)

STATE_KINDS = sorted(k for k in proto.STATES if not k.startswith("_test"))


# ----------------------------------------------------------------------------------------------------
# a minimal state, to test the base class itself


@proto.result_dataclass
class _MeanResult(proto.Result):
    estimate: float
    confidence_interval: proto.ConfidenceInterval
    n: int
    n_dropped: int


class _MeanState(proto.State, kind="_test_mean"):
    def __init__(self, *, value="x", nulls="raise", filter=None, batch_size=None, progress=None):
        super().__init__(nulls=nulls, filter=filter, batch_size=batch_size, progress=progress)
        self.value = value
        self.sums = np.zeros(2)
        self.ids: list[np.ndarray] = []

    def _params(self):
        return {"value": self.value}

    def _requirements(self):
        return {self.value: ("value", proto.NUMERIC)}

    def _update_batch(self, batch, rows):
        x = src.numeric_view(batch.column(self.value)).astype(np.float64)
        self.sums += [x.sum(), (x * x).sum()]
        self.ids.append(rows.array())

    def _merge_from(self, other):
        self.sums = self.sums + other.sums
        self.ids = self.ids + other.ids

    def _arrays(self):
        return {"sums": self.sums}

    def _set_arrays(self, arrays):
        self.sums = arrays["sums"]

    def finalize(self):
        self.check_not_empty()
        m = self.sums[0] / self.n
        return _MeanResult(m, proto.ConfidenceInterval(m - 1, m + 1, confidence=0.95, method="toy"), self.n,
                           self.n_dropped)

    @classmethod
    def _example(cls):
        return {"value": "x"}, {"x": np.arange(10.0)}


def test_nulls_drop_counts_over_many_batches_and_row_groups(tmp_path):
    """n_dropped adds up over every batch and row group (a `=` for `+=` in the scan is caught)."""
    x = np.arange(100.0)
    x[[3, 40, 41, 77, 99]] = [np.nan, np.inf, -np.inf, np.nan, np.nan]
    table = pa.table({"x": pa.array(x, mask=np.arange(100) == 50)})  # one null too
    path = tmp_path / "x.parquet"
    pq.write_table(table, path, row_group_size=10)
    for data in (table, str(path)):
        st = _MeanState(nulls="drop", batch_size=7).update(data)
        assert (st.n_read, st.n_dropped, st.n) == (100, 6, 94)
        keep = np.isfinite(x) & (np.arange(100) != 50)
        assert st.sums[0] == pytest.approx(x[keep].sum(), rel=1e-15)
        # the global row ids skip exactly the dropped rows
        np.testing.assert_array_equal(np.concatenate(st.ids), np.flatnonzero(keep))


def test_non_finite_and_null_values_raise_naming_the_column():
    with pytest.raises(ValueError, match=r"column 'x' \(given as `value`\) has 1 NaN or infinite.*nulls='drop'"):
        _MeanState().update({"x": np.array([1.0, np.inf])})
    with pytest.raises(ValueError, match=r"column 'x' \(given as `value`\) has null values"):
        _MeanState().update(pa.table({"x": pa.array([1.0, None])}))
    with pytest.raises(TypeError, match=r"column 'x' \(given as `value`\) has type string"):
        _MeanState().update(pa.table({"x": ["a"]}))
    with pytest.raises(ValueError, match="unknown column 'y'"):
        _MeanState(value="y").update(pa.table({"x": [1.0]}))
    with pytest.raises(ValueError, match="no rows left: all 2 rows"):
        _MeanState(nulls="drop").update({"x": np.array([np.nan, np.nan])}).finalize()
    with pytest.raises(ValueError, match="empty input"):
        _MeanState().update(pa.table({"x": pa.array([], pa.float64())})).finalize()
    with pytest.raises(ValueError, match="`nulls` must be one of"):
        _MeanState(nulls="ignore")


def test_filter_on_a_column_the_state_does_not_read():
    import pyarrow.compute as pc

    data = {"x": np.arange(10.0), "keep": np.arange(10) % 2}
    st = _MeanState(filter=pc.field("keep") == 1).update(data)
    assert st.n == 5 and st.sums[0] == 25.0


def test_row_offset_keys_rows_globally():
    st = _MeanState().update({"x": np.arange(3.0)}).update({"x": np.arange(2.0)})
    np.testing.assert_array_equal(np.concatenate(st.ids), np.arange(5))
    st = _MeanState().update({"x": np.arange(3.0)}, row_offset=100)
    np.testing.assert_array_equal(st.ids[0], [100, 101, 102])


def test_merge_mismatched_options_is_refused():
    with pytest.raises(ValueError, match="different options"):
        _MeanState(value="x").merge(_MeanState(value="y"))
    with pytest.raises(ValueError, match="nulls="):
        _MeanState(nulls="drop").merge(_MeanState())
    with pytest.raises(TypeError, match="cannot merge"):
        _MeanState().merge(object())


def test_bytes_errors_are_clear_value_errors():
    st = _MeanState().update({"x": np.arange(4.0)})
    b = st.to_bytes()
    with pytest.raises(ValueError, match="not a fastevals state"):
        proto.State.from_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a fastevals state"):
        proto.State.from_bytes(b[: len(b) // 2])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, pa.schema([("a", pa.int8())])) as w:
        w.write_table(pa.table({"a": pa.array([1], pa.int8())}))
    with pytest.raises(ValueError, match="no fastevals metadata"):
        proto.State.from_bytes(sink.getvalue().to_pybytes())
    with pytest.raises(TypeError, match="expected the bytes"):
        proto.State.from_bytes("text")
    other = [k for k in proto.STATES if k != "_test_mean"]
    if other:
        cls = proto.STATES[other[0]]
        with pytest.raises(ValueError, match="not a"):
            cls.from_bytes(b)
    # the filter is a scan option: not in the bytes, given again to from_bytes for later updates
    import pyarrow.compute as pc

    filtered = _MeanState(filter=pc.field("x") > 1).update({"x": np.arange(4.0)})
    assert filtered.n == 2
    assert _MeanState.from_bytes(filtered.to_bytes()).filter is None
    again = _MeanState.from_bytes(filtered.to_bytes(), filter=pc.field("x") > 1).update({"x": np.arange(4.0)})
    assert again.n == 4
    with pytest.raises(TypeError, match="only the scan options"):
        _MeanState.from_bytes(filtered.to_bytes(), value="y")


def test_confidence_interval_unpacks_and_carries_its_level():
    ci = proto.ConfidenceInterval(1, 2, confidence=0.9, method="wilson")
    low, high = ci
    assert (low, high) == (1.0, 2.0) and ci == (1.0, 2.0)
    assert ci.confidence == 0.9 and ci.method == "wilson" and ci.width == 1.0 and 1.5 in ci and 3 not in ci
    back = pickle.loads(pickle.dumps(ci))
    assert back == ci and back.method == "wilson" and back.confidence == 0.9
    assert fastevals.ConfidenceInterval is proto.ConfidenceInterval
    from fastevals.results import ConfidenceInterval as old_name

    assert old_name is proto.ConfidenceInterval


def test_formatting_has_no_negative_zero_and_no_whole_arrays():
    assert proto.fmt(-3e-18) == "-3.000e-18"
    assert proto.fmt(-0.0) == "0"
    assert proto.fmt(-0.00001, digits=4) == "-1.000e-05"
    assert proto.fmt(float("nan")) == "nan"
    assert proto.fmt(1234567) == "1,234,567"
    assert proto.fmt(np.arange(10**6)).startswith("<array")
    text = proto.render_table(pa.table({"a": np.arange(30), "b": np.linspace(-1e-20, 1, 30)}), max_rows=5)
    assert "... 25 more row(s) of 30" in text and len(text.splitlines()) == 8


def test_progress_defaults_to_off_outside_a_terminal(capsys):
    assert proto.resolve_progress(None) is False  # pytest's stderr is not a terminal
    assert proto.resolve_progress(True) is True


def test_check_backend():
    assert check_backend("auto") == "auto"
    with pytest.raises(ValueError, match="backend='cuda' is not available for this analysis"):
        check_backend("cuda")
    with pytest.raises(ValueError, match="`backend` must be one of"):
        check_backend("gpu")


def test_optional_import_names_the_extra():
    with pytest.raises(ImportError, match=r"needs no_such_module_xyz.*pip install no_such_module_xyz"):
        proto.optional_import("no_such_module_xyz", "this")


# ----------------------------------------------------------------------------------------------------
# every registered state and result


def _cases():
    return ["_test_mean", *STATE_KINDS]


def _input_rows(data) -> pa.Table:
    source = src.open_source(data)
    return pa.Table.from_batches(list(source.batches(source.schema.names)))


@pytest.mark.parametrize("kind", _cases())
def test_state_protocol(kind):
    cls = proto.STATES[kind]
    assert hasattr(cls, "_example"), f"{cls.__name__} must give _example() for the protocol test"
    kwargs, data = cls._example()
    table = _input_rows(data)
    assert table.num_rows >= 4, f"{cls.__name__}._example() should give a few rows"
    half = table.num_rows // 2

    whole = cls(**kwargs).update(table)
    assert isinstance(whole, cls), "update must return the state"
    a = cls(**kwargs).update(table.slice(0, half))
    b = cls(**kwargs).update(table.slice(half), row_offset=half)
    a_bytes, b_bytes = a.to_bytes(), b.to_bytes()
    merged = a.merge(b)
    # merge never mutates either input
    assert a.to_bytes() == a_bytes and b.to_bytes() == b_bytes
    assert merged is not a and merged is not b
    assert merged.n == whole.n == table.num_rows - whole.n_dropped
    # update on the halves, merged, is the update on the whole (statistics equal after finalize)
    _assert_same_result(merged.finalize(), whole.finalize())
    # commutative
    _assert_same_result(b.merge(a).finalize(), whole.finalize())
    # bytes round trip, through the class and through state_from_bytes
    for back in (cls.from_bytes(whole.to_bytes()), fastevals.state_from_bytes(whole.to_bytes())):
        assert type(back) is cls
        assert back == whole
        _assert_same_result(back.finalize(), whole.finalize())
    # copy is independent
    c = whole.copy()
    assert c == whole and c is not whole
    c.update(table.slice(0, 2))
    assert c.n == whole.n + 2 - (c.n_dropped - whole.n_dropped)
    assert whole.to_bytes() == cls.from_bytes(whole.to_bytes()).to_bytes()
    # the constructor takes the common options
    params = inspect.signature(cls).parameters
    for name in ("nulls", "filter", "batch_size", "progress"):
        assert name in params, f"{cls.__name__} must take `{name}`"
    # fold == update
    _assert_same_result(fold(cls(**kwargs), table).finalize(), whole.finalize())


def _assert_same_result(r1, r2):
    d1, d2 = r1.to_dict(), r2.to_dict()
    assert d1.keys() == d2.keys()
    _close(d1, d2, "")


def _close(x, y, path):
    if isinstance(x, dict):
        assert isinstance(y, dict) and x.keys() == y.keys(), path
        for k in x:
            _close(x[k], y[k], f"{path}.{k}")
    elif isinstance(x, list):
        assert isinstance(y, list) and len(x) == len(y), path
        for i, (u, v) in enumerate(zip(x, y)):
            _close(u, v, f"{path}[{i}]")
    elif isinstance(x, float) and isinstance(y, (float, int)):
        assert x == pytest.approx(y, rel=1e-9, abs=1e-12, nan_ok=True), path
    else:
        assert x == y, path


@pytest.mark.parametrize("kind", _cases())
def test_result_protocol(kind, tmp_path):
    cls = proto.STATES[kind]
    kwargs, data = cls._example()
    result = cls(**kwargs).update(data).finalize()
    _check_result(result, tmp_path)


def _check_result(result, tmp_path):
    assert isinstance(result, proto.Result), f"{type(result).__name__} must derive from Result"
    name = type(result).__name__
    assert type(result).__repr__ is proto.Result.__repr__, f"{name}: use @result_dataclass (short repr)"
    assert len(repr(result)) < 600, f"{name}: repr too long"
    d = result.to_dict()
    import json

    json.dumps(d, default=str)  # JSON-ready
    t = result.to_arrow()
    assert isinstance(t, pa.Table) and t.num_rows >= 1
    assert result.to_pandas().shape[0] == t.num_rows
    assert result.to_polars().height == t.num_rows
    text = str(result)
    assert text and len(text.splitlines()) < 200
    assert "<table>" in result._repr_html_()
    for col in ("ci_low", "ci_high", "std_error", "rows_dropped"):
        assert col not in t.column_names, f"{name}: old vocabulary {col!r}"
    ci = getattr(result, "confidence_interval", None)
    if ci is not None:
        assert isinstance(ci, proto.ConfidenceInterval), f"{name}.confidence_interval type"
    if type(result)._plot is not proto.Result._plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ax = result.plot(path=tmp_path / "plot.png")
        assert (tmp_path / "plot.png").stat().st_size > 1000
        plt.close(ax.figure)


def test_public_analysis_functions_take_data_first_and_confidence():
    """Every public analysis function of the protocol's analyses: `data` first, keyword-only options,
    and `confidence` (not confidence_level / band_level) where it has intervals."""
    for kind in STATE_KINDS:
        module = inspect.getmodule(proto.STATES[kind])
        package = module.__name__.rsplit(".", 1)[0] if module.__name__.count(".") > 1 else module.__name__
        public = [n for n, m in fastevals._LAZY.items() if m == package and n[0].islower()]
        for name in public:
            fn = getattr(fastevals, name)
            params = list(inspect.signature(fn).parameters.values())
            if not params or params[0].name != "data":
                continue  # helpers that take no table (power, bounds, robustness's model)
            for p in params[1:]:
                # a required subject (bootstrap's metric, drift's current data) may follow `data`;
                # every option (a parameter with a default) is keyword-only
                if p.default is not p.empty:
                    assert p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD), \
                        f"{name}: option {p.name!r} should be keyword-only"
            for p in params:
                assert p.name not in ("confidence_level", "band_level", "level", "log"), \
                    f"{name}: `{p.name}` is spelled `confidence` / `data` in the protocol"


@dataclass
class _Dummy:
    x: int


def test_plain_converts_nested_values():
    ci = proto.ConfidenceInterval(0, 1, confidence=0.5)
    out = proto.plain({"a": np.float64(1.5), "b": (np.int64(2), ci), "t": pa.table({"c": [1]})})
    assert out == {"a": 1.5, "b": [2, {"low": 0.0, "high": 1.0, "confidence": 0.5, "method": None}],
                   "t": [{"c": 1}]}
