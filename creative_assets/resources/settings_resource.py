"""The settings resource: loads and validates Settings once per run (data root, profile, overrides)."""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field

from creative_assets.layout import DataRoot
from creative_assets.settings import Settings, load_settings, require_data_root


class SettingsResource(dg.ConfigurableResource):
    """Data root and profile; empty fields fall back to CREATIVE_ASSETS_DATA / CREATIVE_ASSETS_PROFILE."""

    data_root: str | None = Field(
        default=None, description="data root; default $CREATIVE_ASSETS_DATA or ./data"
    )
    profile: str | None = Field(
        default=None, description="smoke | demo | full; default $CREATIVE_ASSETS_PROFILE"
    )
    overrides: dict[str, Any] = Field(default_factory=dict, description="settings keys to override")

    def load(self) -> Settings:
        """The validated settings; DataRootError if the data root does not exist."""
        cfg = load_settings(self.data_root, self.profile, self.overrides or None)
        require_data_root(cfg.data_root)
        return cfg

    def root(self) -> DataRoot:
        """The data root's layout."""
        return DataRoot(self.load().data_root)
