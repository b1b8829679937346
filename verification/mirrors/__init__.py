"""Python mirrors of the TLA+ specs in ``specs/`` and their explorer.

``python -m verification.mirrors check`` explores every (spec, cfg) pair listed in
``specs/models.tsv`` and compares the outcome and distinct-state count with
the manifest (see docs/adr/0005-verification-approach.md).
"""
