"""Test data shared by several test modules (generated, seeded; never the code under test)."""
