"""Models and patch generation (candidate generation arrives with issue #3)."""
