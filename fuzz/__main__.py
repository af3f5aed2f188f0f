"""Mutation fuzzer of the extractor and the archive handlers: ``python -m fuzz --seed 1 --budget 45``.

Mutant ``i`` of seed ``s`` is fully determined by ``(s, i)`` (format = i-th in turn, corpus file and mutations drawn
from ``random.Random(f"{s}:{i}")``), so any finding can be rebuilt with ``--replay i``. Each mutant runs in a
``fuzz.child`` process under a time and address-space limit (``fuzz.runner``) and is classified ok / refused / crash /
hang / oom / abort. The first mutant of each new failure signature is minimised (shrunk while its class and place
hold) and, when small, written to ``tests/data_plane/fuzz_regressions/`` with an entry in its ``index.json``, which
``tests/data_plane/test_fuzz_regressions.py`` replays. Exit status 1 when any mutant crashed, hung, ran out of memory
or aborted.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from fuzz import seeds as seed_files
from fuzz.minimise import minimise
from fuzz.mutators import mutate
from fuzz.runner import DEFAULT_MEMORY, DEFAULT_TIMEOUT, FAILURES, REPO, Result, Runner

REGRESSIONS = REPO / "tests" / "data_plane" / "fuzz_regressions"
CLASSES = ("ok", "refused", *FAILURES)
MAX_STORED_BYTES = 16 * 1024  # regression inputs stay small (gzip-compressed when that helps)
OPEN_NOTE = "found by make fuzz-long and not fixed yet: fix the class, then delete this note (the test then passes)"


@dataclass
class Finding:
    signature: str
    fmt: str
    index: int
    seed_name: str
    mutations: list[str]
    size: int
    result: Result
    count: int = 1
    stored: str = ""


@dataclass
class Tally:
    per_format: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    per_family: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    findings: dict[str, Finding] = field(default_factory=dict)
    seconds: float = 0.0
    generator_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, fmt: str, index: int, seed: seed_files.Seed, mutations: list[str], data: bytes, result: Result):
        with self.lock:
            self.per_format[fmt][result.outcome] += 1
            for family in {_family(m) for m in mutations}:
                self.per_family[family][result.outcome] += 1
            if result.outcome in FAILURES:
                key = f"{fmt} {result.signature}"
                if key in self.findings:
                    self.findings[key].count += 1
                else:
                    self.findings[key] = Finding(key, fmt, index, seed.name, mutations, len(data), result)

    @property
    def failures(self) -> int:
        return sum(f.count for f in self.findings.values())


def _family(mutation: str) -> str:
    """'zip_member: unterminated in word/document.xml: ...' -> 'zip_member/unterminated'."""
    family, _, rest = mutation.partition(": ")
    return f"{family}/{rest.split(' ', 1)[0]}" if family == "zip_member" else family


def build(seed: int, index: int, corpus: dict[str, list[seed_files.Seed]]) -> tuple[seed_files.Seed, bytes, list[str]]:
    formats = sorted(corpus)
    rng = random.Random(f"{seed}:{index}")
    fmt = formats[index % len(formats)]
    chosen = rng.choice(corpus[fmt])
    data, mutations = mutate(rng, chosen.data, fmt)
    return chosen, data, mutations


def fuzz(args: argparse.Namespace, corpus: dict[str, list[seed_files.Seed]]) -> Tally:
    tally = Tally()
    counter = iter(range(args.start, args.start + args.mutants))
    counter_lock = threading.Lock()
    started = time.monotonic()
    deadline = started + args.budget if args.budget else float("inf")

    def job() -> None:
        with Runner(args.timeout, args.memory) as runner:
            while time.monotonic() < deadline:
                with counter_lock:
                    index = next(counter, None)
                if index is None:
                    return
                try:
                    seed, data, mutations = build(args.seed, index, corpus)
                except Exception as exc:  # a mutator bug must not end the run: counted and shown in the report
                    with tally.lock:
                        tally.generator_errors.append(f"#{index}: {type(exc).__name__}: {exc}")
                    continue
                result = runner.run(seed.target, data, seed.filename)
                tally.add(seed.fmt, index, seed, mutations, data, result)
                if args.verbose or result.outcome in FAILURES:
                    print(f"#{index} {seed.fmt} {seed.name} {mutations} -> {result.outcome} {result.detail[:160]}",
                          flush=True)

    threads = [threading.Thread(target=job, daemon=True) for _ in range(args.jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tally.seconds = time.monotonic() - started
    return tally


def store(finding: Finding, seed: seed_files.Seed, data: bytes, result: Result) -> str:
    """Write a minimised input and its index entry; returns the file name ('' when too big to keep)."""
    packed, suffix = data, ""
    if len(data) > 4096:
        compressed = gzip.compress(data, 9, mtime=0)
        if len(compressed) < len(data):
            packed, suffix = compressed, ".gz"
    if len(packed) > MAX_STORED_BYTES:
        return ""
    digest = hashlib.sha256(data).hexdigest()[:10]
    name = f"{finding.fmt}-{result.outcome}-{digest}.{seed.filename.rpartition('.')[2]}{suffix}"
    REGRESSIONS.mkdir(parents=True, exist_ok=True)
    (REGRESSIONS / name).write_bytes(packed)
    index_path = REGRESSIONS / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    index[name] = {
        "target": seed.target,
        "filename": seed.filename,
        "class": result.outcome,
        "signature": finding.signature,
        "found": f"mutant {finding.index} of {finding.seed_name}: {'; '.join(finding.mutations)}"[:400],
        "open": OPEN_NOTE,
    }
    index_path.write_text(json.dumps(dict(sorted(index.items())), indent=1, ensure_ascii=False) + "\n")
    return name


def shrink_findings(args: argparse.Namespace, corpus: dict[str, list[seed_files.Seed]], tally: Tally) -> None:
    known = set()
    index_path = REGRESSIONS / "index.json"
    if index_path.exists():
        known = {entry["signature"] for entry in json.loads(index_path.read_text()).values()}
    with Runner(args.timeout, args.memory) as runner:
        for finding in tally.findings.values():
            if finding.signature in known:
                finding.stored = "(already kept)"
                continue
            seed, data, _ = build(args.seed, finding.index, corpus)
            print(f"minimising {finding.signature} ({len(data)} bytes)", flush=True)
            small, result = minimise(runner, seed, data, finding.result, args.minimise_budget)
            finding.stored = store(finding, seed, small, result) or f"(not kept: {len(small)} bytes after shrinking)"
            print(f"  -> {len(small)} bytes, {finding.stored}", flush=True)


def report(args: argparse.Namespace, tally: Tally, corpus: dict[str, list[seed_files.Seed]]) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout
    total = sum(sum(c.values()) for c in tally.per_format.values())
    lines = [
        "# Fuzzing the extractor and the archive handlers",
        "",
        f"`python -m fuzz {' '.join(sys.argv[1:])}` on commit {commit.strip() or '?'}: {total} mutants in "
        f"{tally.seconds:.0f} s with {args.jobs} jobs ({total / max(tally.seconds, 1e-9):.1f}/s), each in a child "
        f"process limited to {args.timeout:g} s and {args.memory / 2**30:.1f} GiB of address space. Seeds: "
        + ", ".join(f"{fmt} {len(seeds)}" for fmt, seeds in sorted(corpus.items()))
        + " (corpus files up to 1.5 MB; HTML, text and bulk zips built in fuzz/seeds.py).",
        "",
        "| format | mutants | " + " | ".join(CLASSES) + " |",
        "|---|---:|" + "---:|" * len(CLASSES),
    ]
    for fmt, counts in sorted(tally.per_format.items()):
        lines.append(f"| {fmt} | {sum(counts.values())} | " + " | ".join(str(counts[c]) for c in CLASSES) + " |")
    overall: Counter[str] = sum(tally.per_format.values(), Counter())
    lines.append(f"| **all** | **{total}** | " + " | ".join(f"**{overall[c]}**" for c in CLASSES) + " |")
    lines += ["", "Mutants per mutation family (a mutant stacks 1-3 mutations):", "",
              "| family | mutants | " + " | ".join(CLASSES) + " |", "|---|---:|" + "---:|" * len(CLASSES)]
    for family, counts in sorted(tally.per_family.items()):
        lines.append(f"| {family} | {sum(counts.values())} | " + " | ".join(str(counts[c]) for c in CLASSES) + " |")
    if tally.generator_errors:
        lines += ["", f"Mutants the fuzzer failed to build (its own bugs): {len(tally.generator_errors)}, e.g. "
                  + "; ".join(tally.generator_errors[:3])]
    lines += ["", f"## Findings ({len(tally.findings)} signatures, {tally.failures} mutants)", ""]
    if not tally.findings:
        lines.append("None: every mutant ended in text or a recorded refusal within the limits.")
    else:
        lines += ["| format | class and place | mutants | first (mutant: seed, mutations) | kept as |",
                  "|---|---|---:|---|---|"]
        for finding in sorted(tally.findings.values(), key=lambda f: (f.fmt, f.signature)):
            example = f"#{finding.index}: {finding.seed_name}, {'; '.join(finding.mutations)}"[:220]
            signature = finding.signature.split(" ", 1)[1].replace("|", "\\|")
            lines.append(
                f"| {finding.fmt} | {signature} | {finding.count} | {example.replace('|', '/')} | "
                f"{finding.stored or '—'} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--budget", type=float, default=0, help="seconds of fuzzing (0: until --mutants are done)")
    parser.add_argument("--mutants", type=int, default=1_000_000, help="at most this many mutants")
    parser.add_argument("--start", type=int, default=0, help="first mutant index")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per mutant")
    parser.add_argument("--memory", type=int, default=DEFAULT_MEMORY, help="address-space bytes per child")
    parser.add_argument("--formats", default=",".join(seed_files.FORMATS))
    parser.add_argument("--corpus", help="corpus root (default <repo>/../shared/corpus, then /work/shared/corpus)")
    parser.add_argument("--minimise-budget", type=float, default=0, help="seconds to shrink each new finding (0: off)")
    parser.add_argument("--report", type=Path, help="write the markdown report here")
    parser.add_argument("--replay", type=int, help="rebuild mutant N, write it to --out and print its class")
    parser.add_argument("--out", type=Path, default=Path("mutant.bin"))
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # zipfile warns about the duplicate names mutants have on purpose

    corpus = seed_files.load(seed_files.corpus_dir(args.corpus), tuple(args.formats.split(",")))
    if args.replay is not None:
        seed, data, mutations = build(args.seed, args.replay, corpus)
        args.out.write_bytes(data)
        with Runner(args.timeout, args.memory) as runner:
            result = runner.run(seed.target, data, seed.filename)
        print(f"#{args.replay} {seed.fmt} {seed.name} {mutations}: {len(data)} bytes -> {args.out} as "
              f"{seed.filename}: {result}")
        return 1 if result.outcome in FAILURES else 0

    tally = fuzz(args, corpus)
    if args.minimise_budget and tally.findings:
        shrink_findings(args, corpus, tally)
    text = report(args, tally, corpus)
    print(text)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text, encoding="utf-8")
    return 1 if tally.failures or tally.generator_errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
