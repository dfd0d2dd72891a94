"""Test doubles for the few libraries nothing on a test machine can run (see each one's
docstring). Never imported by product code."""
