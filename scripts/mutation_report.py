"""The mutation score of each module after `make mutate`, and the mutants that still need a test.

score = killed / (mutants - justified equivalents), per file of taxifare/model and taxifare/serving ("of checked":
the same over the mutants a partial run has checked so far, unchecked ones left out). A
mutant killed by a timeout counts as killed; one that no selected test reaches ("no tests") or that
survived counts against the score unless docs/equivalent-mutants.md lists it with the reason it cannot
change behaviour. A listed mutant that a test now kills, or that no longer exists (its function
changed), is reported: the list must stay true.

Usage: python scripts/mutation_report.py [--survivors]   (after `make mutate`; reads mutants/**/*.meta)
"""

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MUTANTS = REPO / "mutants"
EQUIVALENTS = REPO / "docs" / "equivalent-mutants.md"
EQUIVALENT_LINE = re.compile(r"^- `(?P<name>[\w.]+__mutmut_\d+)`: (?P<why>.+)$")
KILLED_CODES = {1, 3, 24, -24, 36, 152, 255}
"""mutmut's exit codes for a mutant that made a test fail (1, 3) or run out of time (the rest)."""
STATUS = {0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", None: "not checked"}
TARGETS = {"taxifare/model/fare_model.py": 90, "taxifare/model/loading.py": 90, "taxifare/serving/validation.py": 90,
           "taxifare/serving/request_parsing.py": 90, "taxifare/serving/api.py": 90,
           "taxifare/serving/responses.py": 90}
"""Modules held to 90%; every other module of model/ and serving/ to DEFAULT_TARGET."""
DEFAULT_TARGET = 80


def equivalents() -> dict[str, str]:
    """Mutant name -> why it cannot change behaviour, from docs/equivalent-mutants.md."""
    if not EQUIVALENTS.is_file():
        return {}
    found = (EQUIVALENT_LINE.match(line) for line in EQUIVALENTS.read_text(encoding="utf-8").splitlines())
    return {match["name"]: match["why"] for match in found if match}


def results() -> dict[str, dict[str, int | None]]:
    """Source file -> {mutant name: exit code} from mutmut's meta files."""
    return {str(meta.relative_to(MUTANTS)).removesuffix(".meta"): json.loads(meta.read_text())["exit_code_by_key"]
            for meta in sorted(MUTANTS.glob("taxifare/**/*.py.meta"))}


def status(code: int | None) -> str:
    return "killed" if code in KILLED_CODES else STATUS.get(code, "suspicious")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survivors", action="store_true", help="list every surviving mutant not listed as equivalent")
    args = parser.parse_args()
    by_file, justified = results(), equivalents()
    if not by_file:
        print("no mutmut results in mutants/: run `make mutate` first", file=sys.stderr)
        return 2
    every = {name: code for codes in by_file.values() for name, code in codes.items()}
    stale = [name for name in justified if status(every.get(name)) not in ("survived", "no tests")]
    rows, open_mutants, below = [], [], []
    for path, codes in by_file.items():
        counts = Counter(status(code) for code in codes.values())
        equivalent = sum(1 for name, code in codes.items() if name in justified and name not in stale)
        counted = len(codes) - counts["skipped"] - equivalent
        score = 100 * counts["killed"] / counted if counted else 100.0
        checked = counted - counts["not checked"] - counts["suspicious"]  # a partial run's score so far
        checked_score = f"{100 * counts['killed'] / checked:.1f}%" if checked else "-"
        target = TARGETS.get(path, DEFAULT_TARGET)
        if score < target:
            below.append(path)
        rows.append((path, len(codes), counts["killed"], counts["survived"], counts["no tests"],
                     counts["not checked"] + counts["suspicious"], equivalent, score, checked_score, target))
        open_mutants += [name for name, code in codes.items()
                         if status(code) in ("survived", "no tests") and name not in justified]
    print(f"{'module':40} {'mutants':>7} {'killed':>6} {'surv.':>5} {'no test':>7} {'other':>5} {'equiv.':>6} "
          f"{'score':>6} {'of checked':>10}  target")
    for path, total, killed, survived, untested, other, equivalent, score, checked_score, target in rows:
        print(f"{path.removeprefix('taxifare/'):40} {total:7} {killed:6} {survived:5} {untested:7} {other:5} "
              f"{equivalent:6} {score:5.1f}% {checked_score:>10}  {'ok' if score >= target else 'BELOW'} {target}%")
    print(f"\n{len(open_mutants)} surviving mutants not listed in {EQUIVALENTS.relative_to(REPO)}"
          + (": see each with `.venv/bin/mutmut show NAME`" if open_mutants else ""))
    if args.survivors:
        print("\n".join(f"  {name}" for name in open_mutants))
    for name in stale:
        print(f"STALE in {EQUIVALENTS.name}: {name} is {status(every.get(name)) if name in every else 'gone'}")
    return 1 if below or stale else 0


if __name__ == "__main__":
    sys.exit(main())
