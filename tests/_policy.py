"""The privacy policy the catalogue encodes: the copy beside the checkout (../shared/policy)
when there is one, else the copy kept with the catalogue (catalogue/policy/), so the tests
that hold statements to the policy's words run on any clone. tests/test_catalogue.py checks
that the two copies are the same wherever both are present."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_POLICY = ROOT.parent / "shared/policy/privacy-policy.txt"
KEPT_POLICY = ROOT / "catalogue/policy/privacy-policy.txt"
POLICY = SHARED_POLICY if SHARED_POLICY.is_file() else KEPT_POLICY
