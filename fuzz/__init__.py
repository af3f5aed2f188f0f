"""Mutation fuzzer of the extractor and the archive handlers (``python -m fuzz``; README "Fuzzing"). A test tool:
nothing in ``lambdas/`` imports it. It drives the data-plane modules by their own names, as Lambda does."""

import sys
from pathlib import Path

_LAMBDAS = str(Path(__file__).resolve().parents[1] / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.append(_LAMBDAS)
