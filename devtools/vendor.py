"""Build the vendored front-end files from the pinned npm packages (`make vendor`).

    cd frontend && npm ci --ignore-scripts     # the exact versions of frontend/package-lock.json
    python -m devtools.vendor                  # build and copy, write the manifests

What it writes, and what is committed, so that running the site needs only Python:
- static/vendor/css/bwv.css: one stylesheet compiled with Sass from frontend/scss/ (GOV.UK Frontend
  and the MOJ Frontend in the force's identity, and our few rules);
- static/vendor/js/: the two design systems' JavaScript, as published (each an ES module);
- static/vendor/images/: the images that stylesheet refers to, and no other;
- tests/vendor/axe.min.js: axe-core, for the accessibility tests only (never served);
- a VERSIONS.json beside each: the version of every package used and the SHA-256 of every file.
  tests/bwv/test_vendor.py checks the files against it, so a hand edit or a partial copy fails.

The published scripts end with a `sourceMappingURL` comment; the maps are not shipped, so the
comment is removed (Django's manifest storage would otherwise look for the map and stop). That is
the only change made to a published file.

Only the standard library is used; Sass runs from frontend/node_modules.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRONTEND = ROOT / "frontend"
MODULES = FRONTEND / "node_modules"
STATIC_VENDOR = ROOT / "static" / "vendor"
TEST_VENDOR = ROOT / "tests" / "vendor"
MANIFEST = "VERSIONS.json"

GOVUK = MODULES / "govuk-frontend"
MOJ = MODULES / "@ministryofjustice" / "frontend"
AXE = MODULES / "axe-core"
SASS = MODULES / "sass"

SCRIPTS = {
    "js/govuk-frontend.min.js": GOVUK / "dist" / "govuk" / "govuk-frontend.min.js",
    "js/moj-frontend.min.js": MOJ / "moj" / "moj-frontend.min.js",
}
IMAGE_DIRS = [MOJ / "moj" / "assets" / "images", GOVUK / "dist" / "govuk" / "assets" / "images"]
SOURCE_MAP_COMMENT = re.compile(rb"\n?//# sourceMappingURL=\S+\s*$")
CSS_IMAGE = re.compile(r"url\(\"?\.\./images/([\w.-]+)\"?\)")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_files(folder: Path) -> dict[str, str]:
    """Every file under `folder` but the manifest, by path relative to it, with its SHA-256."""
    return {
        path.relative_to(folder).as_posix(): sha256_of(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }


def _version(package: Path) -> str:
    return json.loads((package / "package.json").read_text())["version"]


def _licence(package: Path) -> str:
    return json.loads((package / "package.json").read_text()).get("license", "")


def _write_manifest(folder: Path, packages: list[tuple[str, Path]], note: str) -> None:
    manifest = {
        "note": note,
        "packages": {
            name: {"version": _version(path), "license": _licence(path)} for name, path in packages
        },
        "files": manifest_files(folder),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _fresh(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def build_static() -> None:
    _fresh(STATIC_VENDOR)
    css = STATIC_VENDOR / "css" / "bwv.css"
    css.parent.mkdir(parents=True)
    sass = [str(MODULES / ".bin" / "sass"), f"--load-path={FRONTEND}", "--no-source-map"]
    options = ["--style=compressed", "--quiet-deps"]
    subprocess.run([*sass, *options, str(FRONTEND / "scss" / "bwv.scss"), str(css)], check=True)
    for target, source in SCRIPTS.items():
        (STATIC_VENDOR / target).parent.mkdir(parents=True, exist_ok=True)
        (STATIC_VENDOR / target).write_bytes(SOURCE_MAP_COMMENT.sub(b"\n", source.read_bytes()))
    images = STATIC_VENDOR / "images"
    images.mkdir()
    for name in sorted(set(CSS_IMAGE.findall(css.read_text()))):
        source = next((d / name for d in IMAGE_DIRS if (d / name).exists()), None)
        if source is None:
            sys.exit(f"the stylesheet refers to images/{name}, which no package has")
        shutil.copyfile(source, images / name)
    _write_manifest(
        STATIC_VENDOR,
        [("govuk-frontend", GOVUK), ("@ministryofjustice/frontend", MOJ), ("sass", SASS)],
        "Built by `make vendor` (devtools/vendor.py) from frontend/; do not edit by hand.",
    )


def build_tests() -> None:
    _fresh(TEST_VENDOR)
    shutil.copyfile(AXE / "axe.min.js", TEST_VENDOR / "axe.min.js")
    _write_manifest(
        TEST_VENDOR,
        [("axe-core", AXE)],
        "For the accessibility tests only, never served. Copied by `make vendor`.",
    )


def main() -> None:
    if not (SASS / "package.json").exists():
        sys.exit("frontend/node_modules is missing: run `make vendor` (npm ci in frontend/ first)")
    build_static()
    build_tests()
    print(f"vendored into {STATIC_VENDOR.relative_to(ROOT)} and {TEST_VENDOR.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
