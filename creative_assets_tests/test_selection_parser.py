"""Dagster's selection strings need ANTLR runtime ≥ 4.10; detectron2's usual pins give 4.9."""

from __future__ import annotations

import dagster as dg
import pytest

from creative_assets.selection_parser import (
    FIX,
    SelectionParserWarning,
    installed_runtime_version,
    selection_parser_problem,
)


@pytest.mark.parametrize("version", ["4.9", "4.9.3", "4.8"])
def test_runtimes_before_4_10_are_a_problem_with_the_fix(version):
    problem = selection_parser_problem(version)
    assert problem is not None
    assert version in problem and "ord() expected string of length 1" in problem and FIX in problem


@pytest.mark.parametrize("version", ["4.10", "4.11.1", "4.13.2", "5.0.0"])
def test_runtimes_from_4_10_are_fine(version):
    assert selection_parser_problem(version) is None


def test_this_environment_parses_selection_strings_even_with_detectron2_installed():
    """The project's install (with or without detectron2) keeps Dagster's own parser working."""
    assert selection_parser_problem(installed_runtime_version()) is None
    selection = dg.AssetSelection.from_string('key:"creative_manifest" or key:"video_frames"')
    from creative_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    assert selection.resolve(graph) == {dg.AssetKey("creative_manifest"), dg.AssetKey("video_frames")}


def test_the_code_location_warns_only_when_the_parser_is_broken(recwarn):
    import importlib

    import creative_assets.definitions as definitions

    importlib.reload(definitions)
    assert not [w for w in recwarn if issubclass(w.category, SelectionParserWarning)]
