"""Browser tests (collected only when this folder is named; see conftest.py)."""
