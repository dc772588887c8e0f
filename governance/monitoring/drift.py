"""Drift checks for monitored models: data drift, prediction drift and performance decay.

Pure numpy/scipy/pandas (scikit-learn for the performance metrics); nothing here touches Django,
so the functions can run in a Celery worker, a notebook or a test without settings.

Data drift compares a reference sample (usually the validation data the model was accepted on)
with a production batch, feature by feature, using two signals that answer different questions:

* the Population Stability Index (PSI) measures *how large* the shift is (an effect size), and
* a significance test (two-sample Kolmogorov-Smirnov for numeric features, chi-square on the
  2 x k contingency table for categorical ones) measures *whether the shift is believable*
  rather than sampling noise.

Neither is enough alone: with a million rows any shift, however tiny, has p < 1e-10, while with
fifty rows a PSI of 0.3 can be pure noise. The level of a feature is therefore the *lower* of
the PSI level and the p-value level (see :func:`combine_levels`): a breach needs a large PSI that
is also significant, so the p-value alone can never raise an alert.

Performance decay (concept drift) is a separate result: it needs labels, arrives later than the
features, and is judged against the acceptance criteria the model was approved with.

Everything is vectorised. Each numeric column is sorted once per side; PSI bin counts and the KS
statistic are both read off the sorted arrays with ``np.searchsorted``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

Level = Literal["ok", "warn", "breach"]
Kind = Literal["numeric", "categorical"]
Direction = Literal["higher", "lower"]

LEVELS: tuple[Level, ...] = ("ok", "warn", "breach")
MISSING_LABEL = "<missing>"

DEFAULT_DRIFT_THRESHOLDS: dict[str, dict[str, float]] = {
    "psi": {"warn": 0.1, "breach": 0.25},
    "p_value": {"warn": 0.01, "breach": 0.001},
}
DEFAULT_DECAY_THRESHOLDS: dict[str, dict[str, float]] = {"drop": {"warn": 0.02, "breach": 0.05}}

# Same cut-over as scipy.stats.ks_2samp(method="auto"): above it the exact distribution costs
# O(n1 * n2) and the asymptotic one is accurate to well under 2 % (see ks_test).
EXACT_KS_MAX_N = 10_000

# metric -> (task, direction in which the metric is better)
_METRICS: dict[str, tuple[str, Direction]] = {
    "accuracy": ("classification", "higher"),
    "precision": ("classification", "higher"),
    "recall": ("classification", "higher"),
    "f1": ("classification", "higher"),
    "roc_auc": ("classification", "higher"),
    "mae": ("regression", "lower"),
    "rmse": ("regression", "lower"),
    "r2": ("regression", "higher"),
}


# ---------------------------------------------------------------------------------------------
# Result types
# ---------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """Turn a dataclass dump into JSON that PostgreSQL's jsonb accepts (it rejects NaN/inf)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class PSIBin:
    """One row of the PSI table: a quantile bin or a category, with both sides' counts."""

    label: str
    reference_count: int
    current_count: int
    reference_share: float
    current_share: float
    contribution: float


@dataclass(frozen=True)
class PSIResult:
    """Population Stability Index with the per-bin table it was summed from.

    ``edges`` are the interior cut points taken from the reference (numeric only); the first and
    last bins are open-ended. ``new_categories`` lists categories seen only in the current batch.
    """

    value: float
    kind: Kind
    bins: tuple[PSIBin, ...]
    new_categories: tuple[str, ...] = ()
    edges: tuple[float, ...] = ()
    epsilon: float = 1e-4

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for storing in a JSONField."""
        return _jsonable(asdict(self))


@dataclass(frozen=True)
class KSResult:
    """Two-sample Kolmogorov-Smirnov test (two-sided) on the non-missing values."""

    statistic: float
    p_value: float
    method: Literal["exact", "asymp"]
    n_reference: int
    n_current: int


@dataclass(frozen=True)
class ChiSquareResult:
    """Chi-square test of homogeneity on a 2 x k table (reference row, current row)."""

    statistic: float
    dof: int
    p_value: float


@dataclass(frozen=True)
class BinnedKS:
    """The Kolmogorov-Smirnov statistic as far as binned counts can tell it.

    With only bin counts of the current sample, its empirical CDF is known at the bin edges and
    nowhere else, so the largest gap between the two CDFs *over the shared edges* is all that
    can be computed. It is a lower bound of the exact two-sample KS statistic (the supremum over
    every value), and the asymptotic p-value at it is an upper bound of the asymptotic p-value
    of the exact statistic. It is reported, never used for the level: the chi-square test on
    the same bins is exact from counts.
    """

    statistic_lower_bound: float
    p_value_upper_bound: float
    n_reference: int
    n_current: int
    evaluated_at: str = "bin edges"
    note: str = (
        "maximum CDF difference over the shared bin edges, computed from bin counts: a lower "
        "bound of the two-sample KS statistic, not the exact test"
    )


@dataclass(frozen=True)
class FeatureDrift:
    """Drift verdict for one feature (or for the model's predictions).

    ``p_value`` is the one used for levelling: the KS or chi-square p-value, Bonferroni-combined
    with the missing-rate test when a numeric column has missing values on either side. A
    feature checked from summary statistics (bin counts) is levelled by the chi-square test on
    its bins and carries ``ks_from_bins`` (see :class:`BinnedKS`) instead of ``ks``.
    """

    feature: str
    kind: Kind
    level: Level
    psi: PSIResult
    psi_level: Level
    test: Literal["ks", "chi2"]
    statistic: float | None
    p_value: float
    p_value_level: Level
    ks: KSResult | None
    chi2: ChiSquareResult | None
    missing_test: ChiSquareResult | None
    missing_share_reference: float
    missing_share_current: float
    reason: str
    ks_from_bins: BinnedKS | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for storing in a JSONField."""
        return _jsonable(asdict(self))


@dataclass(frozen=True)
class DataDriftReport:
    """Per-feature data drift and the worst level across features."""

    level: Level
    features: dict[str, FeatureDrift]
    n_reference: int
    n_current: int

    @property
    def drifted(self) -> list[str]:
        """Features whose level is not "ok", worst first."""
        flagged = [f for f in self.features.values() if f.level != "ok"]
        flagged.sort(key=lambda f: (-LEVELS.index(f.level), -f.psi.value))
        return [f.feature for f in flagged]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for storing in a JSONField."""
        return _jsonable(asdict(self))


@dataclass(frozen=True)
class MetricDecay:
    """One acceptance criterion re-evaluated on a labelled production batch."""

    metric: str
    value: float | None
    validated: float | None
    threshold: float | None
    direction: Direction
    drop: float | None
    level: Level
    reason: str


@dataclass(frozen=True)
class PerformanceReport:
    """Performance decay (concept drift) of a batch against the validated metrics."""

    task: Literal["classification", "regression"]
    level: Level
    n: int
    metrics: tuple[MetricDecay, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for storing in a JSONField."""
        return _jsonable(asdict(self))


# ---------------------------------------------------------------------------------------------
# Levels
# ---------------------------------------------------------------------------------------------


def _rank(level: str) -> int:
    try:
        return LEVELS.index(level)
    except ValueError:
        raise ValueError(f"unknown level {level!r}; expected one of {LEVELS}") from None


def overall_level(levels: Iterable[str]) -> Level:
    """Worst of the given levels ("breach" > "warn" > "ok"); "ok" when there are none."""
    return LEVELS[max((_rank(level) for level in levels), default=0)]


def combine_levels(psi_level: str, p_value_level: str) -> Level:
    """Level of a drift check from its effect-size level and its significance level.

    The result is the *lower* of the two: the PSI says how big the shift is, the p-value says
    whether it is real. A large but non-significant PSI (small batch) or a significant but tiny
    one (huge batch) both stay below the level the other signal would give on its own.
    """
    return LEVELS[min(_rank(psi_level), _rank(p_value_level))]


def _psi_level(value: float, warn: float, breach: float) -> Level:
    if value >= breach:
        return "breach"
    return "warn" if value >= warn else "ok"


def _p_value_level(p_value: float, warn: float, breach: float) -> Level:
    if p_value < breach:
        return "breach"
    return "warn" if p_value < warn else "ok"


def _drift_thresholds(thresholds: Mapping[str, Mapping[str, float]]) -> tuple[float, ...]:
    try:
        psi_warn = float(thresholds["psi"]["warn"])
        psi_breach = float(thresholds["psi"]["breach"])
        p_warn = float(thresholds["p_value"]["warn"])
        p_breach = float(thresholds["p_value"]["breach"])
    except (KeyError, TypeError) as exc:
        raise ValueError(
            "thresholds must look like {'psi': {'warn': 0.1, 'breach': 0.25}, "
            f"'p_value': {{'warn': 0.01, 'breach': 0.001}}}}; missing {exc}"
        ) from None
    if not 0 <= psi_warn <= psi_breach:
        raise ValueError(f"need 0 <= psi.warn <= psi.breach, got {psi_warn}, {psi_breach}")
    if not 0 < p_breach <= p_warn <= 1:
        raise ValueError(f"need 0 < p_value.breach <= p_value.warn <= 1, got {p_breach}, {p_warn}")
    return psi_warn, psi_breach, p_warn, p_breach


# ---------------------------------------------------------------------------------------------
# Numeric building blocks (all work on arrays sorted once)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SortedSample:
    values: np.ndarray  # sorted, finite or +-inf, no NaN
    n_missing: int

    @property
    def n_total(self) -> int:
        return self.values.size + self.n_missing


def _as_float_array(x: Any) -> np.ndarray:
    if isinstance(x, pd.Series | pd.Index):
        if isinstance(x.dtype, np.dtype) and x.dtype.kind == "f":
            return np.asarray(x.to_numpy(), dtype=np.float64)
        # Nullable extension dtypes (Int64, Float64, boolean) carry pd.NA, which numpy can't sort.
        return x.to_numpy(dtype=np.float64, na_value=np.nan)
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D sample, got shape {arr.shape}")
    return arr


def _sorted_sample(x: Any) -> _SortedSample:
    s = np.sort(_as_float_array(x))
    # np.sort puts NaN last and searchsorted uses the same NaN-aware ordering, so this finds the
    # first NaN without a separate isnan pass over the column.
    n_valid = int(np.searchsorted(s, np.nan, side="left"))
    return _SortedSample(s[:n_valid], s.size - n_valid)


def _quantile_edges(sorted_ref: np.ndarray, bins: int) -> np.ndarray:
    """Interior cut points at the reference's 1/bins, ..., (bins-1)/bins quantiles.

    Same "linear" interpolation as np.quantile, read directly off the sorted array instead of
    re-partitioning it. Duplicates (heavily tied data) are removed so no bin is empty by design.
    """
    n = sorted_ref.size
    if n == 0 or bins < 2:
        return np.empty(0)
    pos = np.arange(1, bins) / bins * (n - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, n - 1)
    frac = pos - lo
    with np.errstate(invalid="ignore"):
        lerp = sorted_ref[lo] + (sorted_ref[hi] - sorted_ref[lo]) * frac
    # frac == 0 must not touch the neighbour: inf * 0 would turn an infinite edge into NaN.
    edges = np.where(frac == 0, sorted_ref[lo], lerp)
    return np.unique(edges[~np.isnan(edges)])


def _bin_counts(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    # Bins are right-closed, (e[i-1], e[i]], with open ends, so values outside the reference's
    # range land in the first or last bin instead of being dropped.
    below = np.searchsorted(sorted_values, edges, side="right")
    return np.diff(np.concatenate(([0], below, [sorted_values.size])))


def _format_edge(value: float) -> str:
    return f"{value:.6g}"


def _numeric_bin_labels(edges: np.ndarray) -> list[str]:
    bounds = ["-inf", *(_format_edge(e) for e in edges), "inf"]
    labels = [f"({lo}, {hi}]" for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    labels[-1] = labels[-1][:-1] + ")"
    return labels


def _psi_from_counts(
    labels: Sequence[str],
    ref_counts: np.ndarray,
    cur_counts: np.ndarray,
    epsilon: float,
    kind: Kind,
    new_categories: Sequence[str] = (),
    edges: np.ndarray | None = None,
) -> PSIResult:
    """PSI = sum (q - p) * ln(q / p) over bins, p the reference share and q the current share.

    Shares below ``epsilon`` (in particular empty bins) are floored to ``epsilon`` before the
    sum, without renormalising: the log stays finite, populated bins keep their exact terms, and
    a bin holding share s on one side only contributes about s * ln(s / epsilon) (0.69 for
    s = 0.1 with the default 1e-4), so a category new in production is clearly visible. Flooring
    every share below epsilon, rather than only exact zeros, keeps PSI monotone: an empty bin
    never scores lower than a bin with a single row.
    """
    ref_counts = np.asarray(ref_counts, dtype=np.int64)
    cur_counts = np.asarray(cur_counts, dtype=np.int64)
    ref_total = max(int(ref_counts.sum()), 1)
    cur_total = max(int(cur_counts.sum()), 1)
    ref_share = ref_counts / ref_total
    cur_share = cur_counts / cur_total
    p = np.maximum(ref_share, epsilon)
    q = np.maximum(cur_share, epsilon)
    contribution = (q - p) * np.log(q / p)
    table = tuple(
        PSIBin(str(label), int(rc), int(cc), float(rs), float(cs), float(c))
        for label, rc, cc, rs, cs, c in zip(
            labels, ref_counts, cur_counts, ref_share, cur_share, contribution, strict=True
        )
    )
    return PSIResult(
        value=float(contribution.sum()),
        kind=kind,
        bins=table,
        new_categories=tuple(new_categories),
        edges=tuple(float(e) for e in (edges if edges is not None else ())),
        epsilon=epsilon,
    )


def _numeric_psi(ref: _SortedSample, cur: _SortedSample, bins: int, epsilon: float) -> PSIResult:
    edges = _quantile_edges(ref.values, bins)
    labels = _numeric_bin_labels(edges)
    ref_counts = _bin_counts(ref.values, edges)
    cur_counts = _bin_counts(cur.values, edges)
    # A rise in missing values is drift too, so missing rows get their own bin (only when there
    # are any, so complete data keeps the plain quantile table).
    if ref.n_missing or cur.n_missing:
        labels.append(MISSING_LABEL)
        ref_counts = np.append(ref_counts, ref.n_missing)
        cur_counts = np.append(cur_counts, cur.n_missing)
    return _psi_from_counts(labels, ref_counts, cur_counts, epsilon, "numeric", edges=edges)


def _ecdf_gaps(x: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ECDF of x and of other, both evaluated at the distinct values of x.

    Within a run of tied values the ECDFs are the same at every member, so the last member of
    each run is enough; there ECDF_x is (index + 1) / n, which is the count searchsorted(x, v,
    "right") would return, so the floats are bit-identical to scipy's.
    """
    distinct = x[1:] != x[:-1]
    if distinct.all():
        return np.arange(1, x.size + 1) / x.size, np.searchsorted(other, x, side="right")
    ends = np.append(np.flatnonzero(distinct), x.size - 1)
    return (ends + 1) / x.size, np.searchsorted(other, x[ends], side="right")


def _ks_statistic_sorted(a: np.ndarray, b: np.ndarray) -> float:
    """sup |F_a - F_b| from two sorted samples, equal to scipy.stats.ks_2samp's statistic.

    scipy concatenates and re-sorts, then searches all n1 + n2 points in both samples; here the
    samples are already sorted, so each side needs one searchsorted into the other.
    """
    n1, n2 = a.size, b.size
    cdf_a_at_a, b_counts_at_a = _ecdf_gaps(a, b)
    cdf_b_at_b, a_counts_at_b = _ecdf_gaps(b, a)
    # Same operation order as scipy (cdf1 - cdf2, each a count divided by n) for exact equality.
    diff_at_a = cdf_a_at_a - b_counts_at_a / n2
    diff_at_b = a_counts_at_b / n1 - cdf_b_at_b
    max_diff = max(diff_at_a.max(), diff_at_b.max())
    min_diff = min(diff_at_a.min(), diff_at_b.min())
    return float(max(max_diff, np.clip(-min_diff, 0, 1)))


def _ks_sorted(
    a: np.ndarray, b: np.ndarray, method: Literal["auto", "exact", "asymp"] = "auto"
) -> KSResult:
    n1, n2 = a.size, b.size
    if min(n1, n2) == 0:
        raise ValueError("ks_test needs at least one non-missing value on each side")
    if method not in ("auto", "exact", "asymp"):
        raise ValueError(f"method must be 'auto', 'exact' or 'asymp', got {method!r}")
    if method == "exact" or (method == "auto" and max(n1, n2) <= EXACT_KS_MAX_N):
        result = stats.ks_2samp(a, b, method="exact")
        return KSResult(float(result.statistic), float(result.pvalue), "exact", n1, n2)
    d = _ks_statistic_sorted(a, b)
    en = n1 * n2 / (n1 + n2)
    p_value = float(np.clip(stats.kstwobign.sf(math.sqrt(en) * d), 0.0, 1.0))
    return KSResult(d, p_value, "asymp", n1, n2)


# ---------------------------------------------------------------------------------------------
# Categorical building blocks
# ---------------------------------------------------------------------------------------------


def _category_counts(x: Any) -> pd.Series:
    """Counts per category label (str), missing values under MISSING_LABEL, zeros dropped."""
    s = x if isinstance(x, pd.Series) else pd.Series(np.asarray(x, dtype=object))
    if isinstance(s.dtype, pd.CategoricalDtype):
        # Codes are -1 for missing; bincount on codes + 1 is much faster than hashing labels.
        codes = s.cat.codes.to_numpy()
        counts = np.bincount(codes.astype(np.int64) + 1, minlength=len(s.cat.categories) + 1)
        labels = [MISSING_LABEL, *(str(c) for c in s.cat.categories)]
    else:
        vc = s.value_counts(dropna=False, sort=False)
        counts = vc.to_numpy()
        labels = [MISSING_LABEL if _is_missing(k) else str(k) for k in vc.index]
    out = pd.Series(counts.astype(np.int64), index=pd.Index(labels, dtype=object))
    if not out.index.is_unique:
        # None and NaN (or 1 and "1") collapse to one label; the table is tiny, so groupby is fine.
        out = out.groupby(level=0, sort=False).sum()
    return out[out > 0]


def category_counts(x: Any) -> pd.Series:
    """Counts per category label as the drift checks see them (labels are str, missing values
    under MISSING_LABEL, zeros dropped)."""
    return _category_counts(x)


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _align_categories(
    ref: pd.Series, cur: pd.Series
) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    # Reference categories first (most frequent first), then the ones new in production.
    ref = ref.sort_values(ascending=False, kind="stable")
    new = sorted(set(cur.index) - set(ref.index))
    labels = [*ref.index, *new]
    ref_counts = ref.reindex(labels, fill_value=0).to_numpy(dtype=np.int64)
    cur_counts = cur.reindex(labels, fill_value=0).to_numpy(dtype=np.int64)
    return labels, ref_counts, cur_counts, new


def _chi_square_from_counts(
    ref_counts: np.ndarray, cur_counts: np.ndarray, correction: bool = True
) -> ChiSquareResult:
    table = np.vstack([ref_counts, cur_counts]).astype(np.int64)
    # A category absent on both sides has zero expected frequency, which scipy rejects.
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] == 0 or (table.sum(axis=1) == 0).any():
        raise ValueError("chi-square test needs at least one observation on each side")
    result = stats.chi2_contingency(table, correction=correction)
    return ChiSquareResult(float(result.statistic), int(result.dof), float(result.pvalue))


# ---------------------------------------------------------------------------------------------
# Public statistics
# ---------------------------------------------------------------------------------------------


def population_stability_index(
    reference: Any,
    current: Any,
    *,
    bins: int = 10,
    kind: Kind = "numeric",
    epsilon: float = 1e-4,
) -> PSIResult:
    """Population Stability Index of ``current`` against ``reference``, with its bin table.

    numeric: ``bins`` quantile bins of the reference (cut points deduplicated, so tied data gets
    fewer bins); the first and last bins are open-ended so out-of-range production values are
    counted. Missing values (NaN/NA) get their own bin when either side has any.
    categorical: one bin per category seen on either side, missing values as "<missing>";
    categories only in ``current`` are listed in ``new_categories``.

    Shares below ``epsilon`` are floored to it (see ``_psi_from_counts`` for why). Rules of thumb:
    < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 large shift.
    """
    if epsilon <= 0:
        raise ValueError("epsilon must be positive")
    if kind == "numeric":
        if bins < 1:
            raise ValueError("bins must be >= 1")
        ref, cur = _sorted_sample(reference), _sorted_sample(current)
        if ref.n_total == 0 or cur.n_total == 0:
            raise ValueError("PSI needs a non-empty reference and current sample")
        return _numeric_psi(ref, cur, bins, epsilon)
    if kind == "categorical":
        ref_c, cur_c = _category_counts(reference), _category_counts(current)
        if ref_c.empty or cur_c.empty:
            raise ValueError("PSI needs a non-empty reference and current sample")
        labels, ref_counts, cur_counts, new = _align_categories(ref_c, cur_c)
        return _psi_from_counts(labels, ref_counts, cur_counts, epsilon, "categorical", new)
    raise ValueError(f"kind must be 'numeric' or 'categorical', got {kind!r}")


def ks_test(
    reference: Any, current: Any, *, method: Literal["auto", "exact", "asymp"] = "auto"
) -> KSResult:
    """Two-sided two-sample Kolmogorov-Smirnov test for a numeric feature; NaNs are dropped.

    The statistic equals ``scipy.stats.ks_2samp``'s. The p-value follows scipy's "auto" rule:
    exact (scipy's own computation) when both samples have at most 10,000 values. Above that
    the exact null distribution costs O(n1 * n2) and is pointless, so the p-value comes from the
    asymptotic Kolmogorov distribution, ``scipy.stats.kstwobign.sf(sqrt(n1 n2 / (n1 + n2)) D)``.
    We use kstwobign rather than ks_2samp's ``kstwo.sf(D, round(en))`` because at monitoring
    sizes (en ~ 5e5) the latter evaluates an O(n) Smirnov sum costing ~0.6 s per feature; the
    two differ by < 2 % relative for p >= 1e-3 and n >= 5,000, and kstwobign errs on the side of
    a *larger* p-value, so it never overstates significance.
    """
    ref, cur = _sorted_sample(reference), _sorted_sample(current)
    return _ks_sorted(ref.values, cur.values, method)


def chi_square_test(reference: Any, current: Any, *, correction: bool = True) -> ChiSquareResult:
    """Chi-square test that a categorical feature has the same distribution in both samples.

    Builds the 2 x k contingency table (row 0 reference counts, row 1 current counts, one column
    per category seen on either side, missing values as their own category) and runs
    ``scipy.stats.chi2_contingency`` on it. ``correction`` is scipy's Yates continuity
    correction, which scipy applies only when dof == 1 (two categories).
    """
    ref_c, cur_c = _category_counts(reference), _category_counts(current)
    _, ref_counts, cur_counts, _ = _align_categories(ref_c, cur_c)
    return _chi_square_from_counts(ref_counts, cur_counts, correction)


# ---------------------------------------------------------------------------------------------
# Feature and prediction drift
# ---------------------------------------------------------------------------------------------


def infer_kind(series: pd.Series) -> Kind:
    """Kind of drift test a column needs: bool, category, object and string are categorical."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return "numeric"
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        return "categorical"
    raise ValueError(
        f"column {series.name!r} has dtype {dtype}, which has no drift test; convert it "
        "(e.g. datetimes to ages in days) or name its kind explicitly"
    )


def _drift_one(
    name: str,
    reference: Any,
    current: Any,
    kind: Kind,
    limits: tuple[float, ...],
    bins: int,
    epsilon: float,
) -> FeatureDrift:
    psi_warn, psi_breach, p_warn, p_breach = limits
    ks: KSResult | None = None
    chi2: ChiSquareResult | None = None
    missing_test: ChiSquareResult | None = None
    if kind == "numeric":
        ref, cur = _sorted_sample(reference), _sorted_sample(current)
        if ref.n_total == 0 or cur.n_total == 0:
            raise ValueError(f"{name}: reference and current must both have rows")
        psi = _numeric_psi(ref, cur, bins, epsilon)
        p_values = []
        if ref.values.size and cur.values.size:
            ks = _ks_sorted(ref.values, cur.values)
            p_values.append(ks.p_value)
        if ref.n_missing or cur.n_missing:
            # KS only sees non-missing values, so a jump in the missing rate needs its own test
            # to back up the PSI's missing bin.
            missing_test = _chi_square_from_counts(
                np.array([ref.values.size, ref.n_missing]),
                np.array([cur.values.size, cur.n_missing]),
            )
            p_values.append(missing_test.p_value)
        # Bonferroni over the (at most two) tests, so adding the missing test can't make a
        # feature easier to flag by chance.
        p_value = min(1.0, len(p_values) * min(p_values))
        test: Literal["ks", "chi2"] = "ks"
        statistic = ks.statistic if ks else None
        miss_ref = ref.n_missing / ref.n_total
        miss_cur = cur.n_missing / cur.n_total
    elif kind == "categorical":
        ref_c, cur_c = _category_counts(reference), _category_counts(current)
        if ref_c.empty or cur_c.empty:
            raise ValueError(f"{name}: reference and current must both have rows")
        labels, ref_counts, cur_counts, new = _align_categories(ref_c, cur_c)
        psi = _psi_from_counts(labels, ref_counts, cur_counts, epsilon, "categorical", new)
        chi2 = _chi_square_from_counts(ref_counts, cur_counts)
        p_value, test, statistic = chi2.p_value, "chi2", chi2.statistic
        miss_ref = int(ref_c.get(MISSING_LABEL, 0)) / int(ref_c.sum())
        miss_cur = int(cur_c.get(MISSING_LABEL, 0)) / int(cur_c.sum())
    else:
        raise ValueError(f"{name}: kind must be 'numeric' or 'categorical', got {kind!r}")

    psi_level = _psi_level(psi.value, psi_warn, psi_breach)
    p_level = _p_value_level(p_value, p_warn, p_breach)
    level = combine_levels(psi_level, p_level)
    tests = f"{test} + missing-rate chi2" if missing_test else test
    reason = f"PSI {psi.value:.4g} ({psi_level}), {tests} p={p_value:.3g} ({p_level})"
    if psi.new_categories:
        reason += "; new categories: " + ", ".join(psi.new_categories)
    return FeatureDrift(
        feature=name,
        kind=kind,
        level=level,
        psi=psi,
        psi_level=psi_level,
        test=test,
        statistic=statistic,
        p_value=p_value,
        p_value_level=p_level,
        ks=ks,
        chi2=chi2,
        missing_test=missing_test,
        missing_share_reference=miss_ref,
        missing_share_current=miss_cur,
        reason=reason,
    )


def feature_drift(
    reference_df: pd.DataFrame,
    current_df: pd.DataFrame,
    *,
    features: Sequence[str] | None = None,
    thresholds: Mapping[str, Mapping[str, float]],
    kinds: Mapping[str, Kind] | None = None,
    bins: int = 10,
    epsilon: float = 1e-4,
) -> DataDriftReport:
    """Data drift of a production batch against the reference data, feature by feature.

    ``features`` defaults to every column of ``reference_df``. The kind of each feature comes
    from ``kinds`` or is inferred from the reference dtype (see :func:`infer_kind`). Numeric
    features get PSI + KS, categorical ones PSI + chi-square; the level is the lower of the PSI
    level and the p-value level (:func:`combine_levels`), with ``thresholds`` shaped like
    :data:`DEFAULT_DRIFT_THRESHOLDS`. Raises ValueError naming any feature missing from either
    frame.
    """
    limits = _drift_thresholds(thresholds)
    names = list(reference_df.columns if features is None else features)
    for label, frame in (("reference", reference_df), ("current", current_df)):
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise ValueError(
                f"features missing from the {label} data: {', '.join(map(str, missing))}"
            )
        duplicated = sorted({str(n) for n in names if frame.columns.get_indexer_for([n]).size > 1})
        if duplicated:
            raise ValueError(f"duplicate columns in the {label} data: {', '.join(duplicated)}")
    if len(reference_df) == 0 or len(current_df) == 0:
        raise ValueError("feature_drift needs at least one row in reference and current data")
    kinds = kinds or {}
    results = {
        str(name): _drift_one(
            str(name),
            reference_df[name],
            current_df[name],
            kinds.get(name) or infer_kind(reference_df[name]),
            limits,
            bins,
            epsilon,
        )
        for name in names
    }
    return DataDriftReport(
        level=overall_level(r.level for r in results.values()),
        features=results,
        n_reference=len(reference_df),
        n_current=len(current_df),
    )


def prediction_drift(
    reference_pred: Any,
    current_pred: Any,
    thresholds: Mapping[str, Mapping[str, float]],
    *,
    kind: Kind | Literal["auto"] = "auto",
    bins: int = 10,
    epsilon: float = 1e-4,
) -> FeatureDrift:
    """Drift of the model's outputs: the same PSI and tests as a feature, on 1-D predictions.

    With ``kind="auto"`` float outputs (scores, probabilities, regression values) are numeric and
    everything else (integer, bool, string or categorical class labels) is categorical, because a
    classifier's integer labels are classes, not quantities.
    """
    ref = reference_pred if isinstance(reference_pred, pd.Series) else pd.Series(reference_pred)
    cur = current_pred if isinstance(current_pred, pd.Series) else pd.Series(current_pred)
    if kind == "auto":
        dtype = ref.dtype
        is_float = pd.api.types.is_float_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)
        kind = "numeric" if is_float else "categorical"
    if len(ref) == 0 or len(cur) == 0:
        raise ValueError("prediction_drift needs reference and current predictions")
    return _drift_one("prediction", ref, cur, kind, _drift_thresholds(thresholds), bins, epsilon)


# ---------------------------------------------------------------------------------------------
# Drift from summary statistics (bin and category counts instead of rows)
# ---------------------------------------------------------------------------------------------


def reference_edges(reference: Any, bins: int = 10) -> np.ndarray:
    """The interior cut points the row path bins a numeric reference column with; counts of a
    batch on these edges give exactly the PSI the rows would."""
    return _quantile_edges(_sorted_sample(reference).values, bins)


def binned_ks(ref_counts: np.ndarray, cur_counts: np.ndarray) -> BinnedKS | None:
    """Largest CDF gap over the shared bin edges (non-missing counts); None without values."""
    ref_counts = np.asarray(ref_counts, dtype=np.int64)
    cur_counts = np.asarray(cur_counts, dtype=np.int64)
    n1, n2 = int(ref_counts.sum()), int(cur_counts.sum())
    if n1 == 0 or n2 == 0:
        return None
    # The CDFs at each interior edge; the last bin ends at +inf where both are 1.
    gaps = np.abs(np.cumsum(ref_counts)[:-1] / n1 - np.cumsum(cur_counts)[:-1] / n2)
    d = float(gaps.max()) if gaps.size else 0.0
    en = n1 * n2 / (n1 + n2)
    p_value = float(np.clip(stats.kstwobign.sf(math.sqrt(en) * d), 0.0, 1.0))
    return BinnedKS(d, p_value, n1, n2)


def _levelled(
    name: str,
    kind: Kind,
    psi: PSIResult,
    chi2: ChiSquareResult,
    limits: tuple[float, ...],
    *,
    miss_ref: float,
    miss_cur: float,
    ks_from_bins: BinnedKS | None = None,
) -> FeatureDrift:
    psi_warn, psi_breach, p_warn, p_breach = limits
    psi_level = _psi_level(psi.value, psi_warn, psi_breach)
    p_level = _p_value_level(chi2.p_value, p_warn, p_breach)
    test = "chi2 on bins" if kind == "numeric" else "chi2"
    reason = f"PSI {psi.value:.4g} ({psi_level}), {test} p={chi2.p_value:.3g} ({p_level})"
    if ks_from_bins is not None:
        reason += f"; KS from bins >= {ks_from_bins.statistic_lower_bound:.4g}"
    if psi.new_categories:
        reason += "; new categories: " + ", ".join(psi.new_categories)
    return FeatureDrift(
        feature=name,
        kind=kind,
        level=combine_levels(psi_level, p_level),
        psi=psi,
        psi_level=psi_level,
        test="chi2",
        statistic=chi2.statistic,
        p_value=chi2.p_value,
        p_value_level=p_level,
        ks=None,
        chi2=chi2,
        missing_test=None,
        missing_share_reference=miss_ref,
        missing_share_current=miss_cur,
        reason=reason,
        ks_from_bins=ks_from_bins,
    )


def numeric_drift_from_counts(
    name: str,
    reference: Any,
    edges: Sequence[float],
    counts: Sequence[int],
    missing: int,
    thresholds: Mapping[str, Mapping[str, float]],
    *,
    epsilon: float = 1e-4,
) -> FeatureDrift:
    """Drift of a numeric feature given as counts on ``edges`` (right-closed bins with open
    ends, ``len(edges) + 1`` counts, as the row path bins) against the reference values binned
    on the same edges.

    PSI and the chi-square test of homogeneity on the bins (plus a missing bin when either side
    has missing values) are exact from counts; the KS statistic is not (see :class:`BinnedKS`).
    """
    edges_arr = np.asarray(edges, dtype=np.float64)
    cur_counts = np.asarray(counts, dtype=np.int64)
    if cur_counts.size != edges_arr.size + 1:
        raise ValueError(f"{name}: {cur_counts.size} counts for {edges_arr.size} edges")
    ref = _sorted_sample(reference)
    ref_counts = _bin_counts(ref.values, edges_arr)
    ks_from_bins = binned_ks(ref_counts, cur_counts)
    labels = _numeric_bin_labels(edges_arr)
    if ref.n_missing or missing:
        labels.append(MISSING_LABEL)
        ref_counts = np.append(ref_counts, ref.n_missing)
        cur_counts = np.append(cur_counts, missing)
    if ref.n_total == 0 or int(cur_counts.sum()) == 0:
        raise ValueError(f"{name}: reference and current must both have rows")
    psi = _psi_from_counts(labels, ref_counts, cur_counts, epsilon, "numeric", edges=edges_arr)
    chi2 = _chi_square_from_counts(ref_counts, cur_counts)
    return _levelled(
        name,
        "numeric",
        psi,
        chi2,
        _drift_thresholds(thresholds),
        miss_ref=ref.n_missing / ref.n_total,
        miss_cur=missing / int(cur_counts.sum()),
        ks_from_bins=ks_from_bins,
    )


def categorical_drift_from_counts(
    name: str,
    reference: Any,
    counts: Mapping[str, int],
    missing: int,
    thresholds: Mapping[str, Mapping[str, float]],
    *,
    epsilon: float = 1e-4,
) -> FeatureDrift:
    """Drift of a categorical feature given as category -> count (missing values apart) against
    the reference values: the same PSI and chi-square as the row path, exactly."""
    ref_c = _category_counts(reference)
    current = {str(label): int(count) for label, count in counts.items() if count}
    if missing:
        current[MISSING_LABEL] = int(missing)
    cur_c = pd.Series(current, dtype=np.int64)
    if ref_c.empty or cur_c.empty:
        raise ValueError(f"{name}: reference and current must both have rows")
    labels, ref_counts, cur_counts, new = _align_categories(ref_c, cur_c)
    psi = _psi_from_counts(labels, ref_counts, cur_counts, epsilon, "categorical", new)
    chi2 = _chi_square_from_counts(ref_counts, cur_counts)
    return _levelled(
        name,
        "categorical",
        psi,
        chi2,
        _drift_thresholds(thresholds),
        miss_ref=int(ref_c.get(MISSING_LABEL, 0)) / int(ref_c.sum()),
        miss_cur=int(missing) / int(cur_c.sum()),
    )


# ---------------------------------------------------------------------------------------------
# Performance decay (concept drift)
# ---------------------------------------------------------------------------------------------


def _compute_metric(
    name: str, y_true: np.ndarray, y_pred: np.ndarray, y_score: Any, criterion: Mapping[str, Any]
) -> float:
    # Imported here: scikit-learn takes ~1 s to import and only this function needs it.
    from sklearn import metrics as skm

    if name == "accuracy":
        return float(skm.accuracy_score(y_true, y_pred))
    if name in ("precision", "recall", "f1"):
        n_labels = np.unique(np.concatenate([y_true, y_pred])).size
        average = criterion.get("average") or ("binary" if n_labels <= 2 else "macro")
        kwargs: dict[str, Any] = {"average": average, "zero_division": 0.0}
        if average == "binary":
            kwargs["pos_label"] = criterion.get("pos_label", 1)
        fn = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}
        return float(fn[name](y_true, y_pred, **kwargs))
    if name == "roc_auc":
        scores = np.asarray(y_score, dtype=np.float64)
        if scores.ndim == 2 and scores.shape[1] == 2:
            scores = scores[:, 1]
        if scores.ndim == 2:
            return float(
                skm.roc_auc_score(
                    y_true,
                    scores,
                    multi_class=criterion.get("multi_class", "ovr"),
                    average=criterion.get("average", "macro"),
                )
            )
        return float(skm.roc_auc_score(y_true, scores))
    if name == "mae":
        return float(skm.mean_absolute_error(y_true, y_pred))
    if name == "rmse":
        return float(skm.root_mean_squared_error(y_true, y_pred))
    if name == "r2":
        return float(skm.r2_score(y_true, y_pred))
    raise ValueError(f"unknown metric {name!r}")


def _criterion_metric(criterion: Mapping[str, Any], task: str) -> tuple[str, Direction]:
    """(metric, direction) of an acceptance criterion, checked against the task."""
    name = criterion["metric"]
    if name not in _METRICS:
        raise ValueError(f"unknown metric {name!r}; supported: {', '.join(_METRICS)}")
    metric_task, natural = _METRICS[name]
    if metric_task != task:
        raise ValueError(f"metric {name!r} is for {metric_task}, not {task}")
    direction = criterion.get("direction", natural)
    if direction != natural:
        raise ValueError(f"{name} is better when {natural}, criterion says {direction!r}")
    return name, natural


def _judge(
    criterion: Mapping[str, Any],
    task: str,
    validated: Mapping[str, float],
    value: float | None,
    undefined_reason: str,
    thresholds: Mapping[str, Mapping[str, float]] | None,
) -> MetricDecay:
    """The level of one criterion's value on a batch (None: it has no value there)."""
    name, direction = _criterion_metric(criterion, task)
    drop_limits = criterion.get("drop", (thresholds or DEFAULT_DECAY_THRESHOLDS)["drop"])
    warn_drop, breach_drop = float(drop_limits["warn"]), float(drop_limits["breach"])
    threshold = criterion.get("threshold")
    reference = validated.get(name)
    sign = 1.0 if direction == "higher" else -1.0
    drop = None
    if value is not None and reference is not None:
        drop = sign * (float(reference) - value)
    level: Level
    if value is None:
        level, reason = "warn", f"undefined on this batch: {undefined_reason}"
    elif threshold is not None and sign * (value - float(threshold)) < 0:
        level = "breach"
        reason = f"{name}={value:.4g} fails the acceptance threshold {threshold} ({direction})"
    elif drop is not None and drop >= breach_drop:
        level, reason = (
            "breach",
            f"{name} dropped {drop:.4g} from {reference} (>= {breach_drop})",
        )
    elif drop is not None and drop >= warn_drop:
        level, reason = "warn", f"{name} dropped {drop:.4g} from {reference} (>= {warn_drop})"
    else:
        level = "ok"
        reason = f"{name}={value:.4g}" + (
            "" if reference is not None else " (no validated value to compare with)"
        )
    return MetricDecay(
        metric=name,
        value=value,
        validated=None if reference is None else float(reference),
        threshold=None if threshold is None else float(threshold),
        direction=direction,
        drop=drop,
        level=level,
        reason=reason,
    )


def metrics_from_confusion(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of the positive class (label 1) from a binary
    confusion matrix, as scikit-learn computes them with ``zero_division=0``."""
    n = tp + fp + fn + tn
    if n <= 0:
        raise ValueError("the confusion matrix is empty")
    return {
        "accuracy": (tp + tn) / n,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 0.0,
    }


def performance_from_values(
    validated: Mapping[str, float],
    values: Mapping[str, float],
    *,
    n: int,
    criteria: Sequence[Mapping[str, Any]],
    task: Literal["classification", "regression"],
    thresholds: Mapping[str, Mapping[str, float]] | None = None,
    missing_reason: str = "not given in the summary statistics",
) -> PerformanceReport:
    """Performance decay judged from metric values computed elsewhere (summary statistics):
    the same levels as :func:`performance_decay`; a criterion without a value is a warn."""
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    results = [
        _judge(
            criterion, task, validated, values.get(criterion["metric"]), missing_reason, thresholds
        )
        for criterion in criteria
    ]
    return PerformanceReport(
        task=task, level=overall_level(m.level for m in results), n=int(n), metrics=tuple(results)
    )


def performance_decay(
    validated: Mapping[str, float],
    y_true: Any,
    y_pred: Any,
    *,
    criteria: Sequence[Mapping[str, Any]],
    task: Literal["classification", "regression"],
    y_score: Any = None,
    thresholds: Mapping[str, Mapping[str, float]] | None = None,
) -> PerformanceReport:
    """Re-evaluate the acceptance criteria on a labelled production batch (concept drift).

    Each criterion, e.g. ``{"metric": "accuracy", "threshold": 0.8, "direction": "higher"}``, is
    computed with scikit-learn (accuracy, precision, recall, f1, roc_auc with ``y_score`` for
    classification; mae, rmse, r2 for regression) and compared with the value in ``validated``:

    * breach whenever the acceptance threshold is no longer met, whatever the drop;
    * otherwise breach / warn when the drop from the validated value reaches the
      ``thresholds["drop"]`` limits (absolute, in the metric's units; a criterion may carry its
      own ``"drop"``). The drop is signed so that positive always means worse.

    A metric that is undefined on the batch (e.g. ROC AUC with one class present) is a warn:
    the batch cannot show the model still meets its criterion. Optional criterion keys:
    ``average`` and ``pos_label`` (precision/recall/f1), ``multi_class`` (roc_auc).
    """
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    y_true_arr = np.asarray(y_true)
    y_pred_arr = np.asarray(y_pred)
    if y_true_arr.ndim != 1 or y_true_arr.shape != y_pred_arr.shape:
        raise ValueError(
            f"y_true and y_pred must be 1-D of equal length, got {y_true_arr.shape} and "
            f"{y_pred_arr.shape}"
        )
    if y_true_arr.size == 0:
        raise ValueError("performance_decay needs a non-empty labelled batch")
    results = []
    for criterion in criteria:
        name, _ = _criterion_metric(criterion, task)
        if name == "roc_auc" and y_score is None:
            raise ValueError("roc_auc needs y_score (scores or class probabilities)")
        with warnings.catch_warnings(record=True) as caught:
            # sklearn returns NaN with an UndefinedMetricWarning when a metric has no value on
            # this batch (e.g. ROC AUC with one class present); that becomes a warn below.
            # Configuration mistakes (bad pos_label, ...) raise ValueError and are not caught.
            warnings.simplefilter("always")
            raw = _compute_metric(name, y_true_arr, y_pred_arr, y_score, criterion)
        value = raw if math.isfinite(raw) else None
        undefined_reason = "; ".join(str(w.message) for w in caught) or "metric is NaN"
        results.append(_judge(criterion, task, validated, value, undefined_reason, thresholds))
    return PerformanceReport(
        task=task,
        level=overall_level(m.level for m in results),
        n=int(y_true_arr.size),
        metrics=tuple(results),
    )
