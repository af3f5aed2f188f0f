"""Shrinking a finding while its class (and, for crashes, exception type and place) holds.

Zip-based mutants are shrunk as packages first (drop members, then cut each member's payload, recompressing every
try), since cutting bytes of a compressed archive breaks it at once; anything else, or a package whose finding
depends on its raw bytes, is cut byte-wise. Hangs are judged with a shorter limit (``HANG_PROBE`` s) so a try costs
less; the kept input still needs more than that on the code it was found on.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fuzz.mutators import _build, _members
from fuzz.runner import Result, Runner
from fuzz.seeds import Seed

HANG_PROBE = 4.0


def minimise(runner: Runner, seed: Seed, data: bytes, found: Result, budget: float) -> tuple[bytes, Result]:
    deadline = time.monotonic() + budget
    timeout = HANG_PROBE if found.outcome == "hang" else None
    last = [found]

    def holds(candidate: bytes) -> bool:
        if time.monotonic() > deadline:
            return False
        result = runner.run(seed.target, candidate, seed.filename, timeout)
        same = result.outcome == found.outcome and (found.outcome == "hang" or result.signature == found.signature)
        if same:
            last[0] = result
        return same

    members = _members(data) if seed.fmt in ("docx", "pptx", "xlsx", "zip") else None
    if members and holds(_build(members)):
        index = len(members) - 1
        while index >= 0 and time.monotonic() < deadline:
            trial = members[:index] + members[index + 1 :]
            if trial and holds(_build(trial)):
                members = trial
            index -= 1
        for position in range(len(members)):
            info, payload = members[position]

            def member_holds(candidate: bytes, position: int = position, info=info) -> bool:
                return holds(_build(members[:position] + [(info, candidate)] + members[position + 1 :]))

            members[position] = (info, cut(payload, member_holds, deadline))
        data = _build(members)
    else:
        data = cut(data, holds, deadline)
    return data, last[0]


def cut(data: bytes, holds: Callable[[bytes], bool], deadline: float) -> bytes:
    """Remove ever smaller chunks while ``holds`` stays true (a simplified delta debugging)."""
    chunk = max(len(data) // 2, 1)
    while chunk >= 1 and time.monotonic() < deadline and data:
        start, changed = 0, False
        while start < len(data) and time.monotonic() < deadline:
            candidate = data[:start] + data[start + chunk :]
            if candidate and holds(candidate):
                data, changed = candidate, True
            else:
                start += chunk
        if not changed:
            if chunk == 1:
                break
            chunk //= 2
    return data
