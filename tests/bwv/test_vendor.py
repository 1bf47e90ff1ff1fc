"""The vendored front-end files are exactly what `make vendor` built from the pinned packages: each
file's SHA-256 is in its folder's VERSIONS.json, nothing is missing and nothing was added by hand,
and the versions recorded are the versions frontend/package.json pins."""

import json
from pathlib import Path

import pytest

from devtools.vendor import MANIFEST, STATIC_VENDOR, TEST_VENDOR, manifest_files

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("folder", [STATIC_VENDOR, TEST_VENDOR], ids=["static", "tests"])
def test_every_vendored_file_matches_its_recorded_checksum(folder):
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["files"], "nothing recorded"
    assert manifest_files(folder) == manifest["files"]


def test_the_recorded_versions_are_the_pinned_ones():
    pins = json.loads((ROOT / "frontend" / "package.json").read_text())["devDependencies"]
    recorded = {}
    for folder in (STATIC_VENDOR, TEST_VENDOR):
        packages = json.loads((folder / MANIFEST).read_text())["packages"]
        recorded |= {name: package["version"] for name, package in packages.items()}
    assert recorded == pins


def test_the_site_serves_the_design_systems_scripts_and_no_test_tool():
    files = json.loads((STATIC_VENDOR / MANIFEST).read_text())["files"]
    assert {"css/bwv.css", "js/govuk-frontend.min.js", "js/moj-frontend.min.js"} <= set(files)
    assert not any("axe" in name for name in files)
    # The pages use the site's own typeface and mark: no GOV.UK font or crown is shipped.
    assert not any(name.endswith((".woff", ".woff2")) or "crown" in name for name in files)
