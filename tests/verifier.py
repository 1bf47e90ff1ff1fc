"""The offline bundle verifier (tools/verify_bundle.py), loaded as the standalone file it is."""

import importlib.util
from pathlib import Path

VERIFIER = Path(__file__).resolve().parents[1] / "tools" / "verify_bundle.py"


def load_verifier():
    spec = importlib.util.spec_from_file_location("verify_bundle", VERIFIER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
