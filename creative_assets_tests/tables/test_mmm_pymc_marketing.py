"""A real MMM client: PyMC-Marketing's multidimensional MMM built and fitted straight from the panel folder.

Needs the `mmm` extra (`pip install -e ".[mmm]"`); skipped without it. The lines between the markers are the
README's "Starting an MMM from our tables": read the folder, pick columns, fit — no reshaping.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from creative_assets.tables.mmm import load_impressions, mmm_panel, panel_grid
from creative_assets.tables.warehouse import write_part
from creative_assets_tests.support.mmm_data import OBJECTS, mmm_data

pytest.importorskip("pymc_marketing", reason="the mmm extra is not installed (pip install -e '.[mmm]')")

BRANDS = ("acme", "globex")


def write_panel(root: Path) -> Path:
    """The warehouse folder `mmm_panel` as the asset writes it: one Hive partition per brand."""
    data = mmm_data(seed=2, brands=BRANDS, weeks=12)
    csv = root / "impressions.csv"
    csv.write_text(data.impressions_csv, encoding="utf-8")
    impressions = load_impressions(csv)
    grid = panel_grid(impressions)
    folder = root / "warehouse" / "mmm_panel"
    for brand in BRANDS:
        mine = impressions[impressions["brand"] == brand]
        write_part(
            folder / f"brand={brand}" / "part-00000.parquet",
            mmm_panel(mine, data.features, OBJECTS, grid).panel,
        )
    return folder


def test_pymc_marketing_fits_the_panel_as_it_is(tmp_path: Path) -> None:
    folder = write_panel(tmp_path)
    rng = np.random.default_rng(42)

    # --- README: Starting an MMM from our tables ---
    from pymc_marketing.mmm import GeometricAdstock, LogisticSaturation
    from pymc_marketing.mmm.multidimensional import MMM

    panel = pd.read_parquet(folder)  # every brand, one row per (week_start, brand)
    channels = ["spend_paid_social", "spend_search", "spend_tv"]
    controls = ["share_logo", "share_product", "share_logo_in_first_3s"]
    # An analyst joins real sales here; the test makes a seeded synthetic target.
    panel["sales"] = (
        500 + 0.6 * panel["spend_tv"] + 0.3 * panel["spend_paid_social"] + 80 * panel["share_logo"]
    ) * rng.lognormal(0, 0.05, len(panel))
    mmm = MMM(
        date_column="week_start",
        target_column="sales",
        dims=("brand",),
        channel_columns=channels,
        control_columns=controls,
        adstock=GeometricAdstock(l_max=2),
        saturation=LogisticSaturation(),
    )
    started = time.perf_counter()
    idata = mmm.fit(
        panel[["week_start", "brand", *channels, *controls]],
        panel["sales"],
        draws=20,
        tune=20,
        chains=1,
        cores=1,
        progressbar=False,
        random_seed=7,
    )
    print(f"pymc-marketing fit: {time.perf_counter() - started:.1f} s")

    posterior = idata.posterior
    assert list(posterior.coords["brand"].values) == list(BRANDS)
    assert list(posterior.coords["channel"].values) == channels
    assert list(posterior.coords["control"].values) == controls
    weeks = pd.to_datetime(posterior.coords["date"].values).strftime("%Y-%m-%d").tolist()
    assert weeks == panel["week_start"].drop_duplicates().sort_values().dt.strftime("%Y-%m-%d").tolist()
    for name in ("saturation_beta", "adstock_alpha", "gamma_control", "intercept_contribution"):
        assert np.isfinite(posterior[name].values).all(), name
    # Every channel keeps its spend: none zeroed by a NaN scale from a missing week.
    contribution = posterior["channel_contribution"].mean(("chain", "draw", "date"))
    assert (contribution.values > 0).all()
