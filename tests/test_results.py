"""Claims over the committed GPU results (``results/<gpu>/latest.csv``), checked in CI."""

from pathlib import Path

import pandas as pd
import pytest

RESULTS = sorted((Path(__file__).parents[1] / "results").glob("*/latest.csv"))
POINT = ["op", "mode", "T", "N", "device"]


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.parent.name)
def test_no_16_bit_path_is_slower_than_fp32(path):
    """At every benchmarked point with both, tether's 16-bit call is no slower than fp32."""
    rows = pd.read_csv(path)
    rows = rows[rows["impl"] == "tether"]
    fp32 = rows[rows["dtype"] == "float32"].set_index(POINT)["ms"]
    compared = 0
    for dtype in ("bfloat16", "float16"):
        half = rows[rows["dtype"] == dtype].set_index(POINT)["ms"]
        both = pd.concat([fp32.rename("fp32"), half.rename("half")], axis=1, join="inner")
        slower = both[both["half"] > both["fp32"]]
        assert slower.empty, f"{dtype} slower than float32 in {path}:\n{slower}"
        compared += len(both)
    assert compared or not len(rows[rows["dtype"] != "float32"]), "16-bit rows without fp32 ones"
