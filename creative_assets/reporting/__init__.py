"""Figures and other renderings for asset metadata."""
