"""The performance gate: compare two result CSVs row by row."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from tether.benchmark.runner import KEY

GATED_SPEED = ("tether",)  # implementations whose slowdown fails the gate
GATED_ERROR = ("tether", "eager", "compile")  # peers' semantics differ: reported only


@dataclass
class GateReport:
    regressions: pd.DataFrame
    improvements: pd.DataFrame
    unchanged: int
    only_in_baseline: pd.DataFrame
    only_in_current: pd.DataFrame
    error_violations: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        gated = self.regressions[self.regressions["impl"].isin(GATED_SPEED)]
        return bool(len(gated) or len(self.error_violations))


def compare(baseline: pd.DataFrame, current: pd.DataFrame, tolerance: float) -> GateReport:
    """Match rows on (op, impl, mode, dtype, T, N, device); a row is a regression when
    ``current_ms > baseline_ms * (1 + tolerance)``, an improvement when faster by as much."""
    base = baseline.astype({k: str for k in KEY})
    cur = current.astype({k: str for k in KEY})
    merged = base.merge(cur, on=KEY, how="outer", suffixes=("_base", "_cur"), indicator=True)
    both = merged[merged["_merge"] == "both"].copy()
    both["change"] = both["ms_cur"] / both["ms_base"] - 1
    columns = KEY + ["ms_base", "ms_cur", "change"]
    regressions = both[both["change"] > tolerance][columns]
    improvements = both[both["change"] < -tolerance][columns]
    errors = cur[cur["impl"].isin(GATED_ERROR) & (cur["max_error"] > cur["error_bound"])]
    return GateReport(
        regressions=regressions,
        improvements=improvements,
        unchanged=len(both) - len(regressions) - len(improvements),
        only_in_baseline=merged[merged["_merge"] == "left_only"][KEY],
        only_in_current=merged[merged["_merge"] == "right_only"][KEY],
        error_violations=errors[KEY + ["max_error", "error_bound"]],
    )
