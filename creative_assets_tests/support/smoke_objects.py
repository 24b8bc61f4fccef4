"""The objects every test settings file declares: two keep tests fast and still cover a multi-class model and a
pooled one. The session's object partitions are built from them (see conftest.py)."""

SMOKE_SETTINGS = """\
objects:
  - {name: branding, categories: [logo, product, brand_cue]}
  - {name: face, categories: [face, smile], pooled: true}
"""
