"""Settle most unchecked mutants of `make mutate` in a fraction of mutmut's time, with mutmut's own verdicts.

mutmut runs each mutant's tests (the selected tests that reach its function) fastest first. On the request path a
function is reached by 130-350 tests, and the test that kills a mutant is usually one of its own module's, far down
that order: a kill costs ~40 s there. This runs the same mutants (mutmut's trampolines in mutants/) against the same
tests, the mutated module's own tests first (test_MODULE.py, then the files that import it), stopping at the first
failure: a kill takes ~10 s. A mutant whose tests all pass is a survivor, as mutmut would say. One not settled
within --limit seconds is left unchecked for `mutmut run`, which then only has those. Verdicts go into mutants/'s
result files, where `mutmut results`, `mutmut show` and scripts/mutation_report.py read them.

Needs mutants/ and its test mapping from a `mutmut run` (`make mutate` makes them). Usage:
    .venv/bin/python scripts/mutation_prepass.py [--jobs 2] [--limit 40] [--unmapped-limit 150] [NAME_OR_GLOB...]
"""

import argparse
import fnmatch
import functools
import importlib.metadata
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MUTANTS = REPO / "mutants"
MODEL_CACHE_ENV = "TAXIFARE_TEST_MODEL_CACHE"
"""Where the tests keep their trained model between processes (tests/conftest.py): without it each would train."""
STATS_FILE = MUTANTS / "mutmut-stats.json"
KILLED, SURVIVED, NO_TESTS = 1, 0, 33
"""mutmut's result codes: a test failed; every test passed; no test reaches the function (as mutmut maps them)."""
TEST_GONE = 4
"""pytest's usage error: here, a test that mutmut's map names no longer exists (renamed or deleted since)."""
PRELOADED = ("numpy", "pandas", "sklearn.ensemble", "joblib", "flask", "functions_framework", "hypothesis",
             "google.cloud.storage", "pytest")
"""Imported once here, before forking: each mutant's process starts with them (never taxifare: mutants/ has its own)."""


def unchecked(names: list[str]) -> dict[Path, list[str]]:
    """The mutants without a verdict (matching `names`, globs allowed, if given), by result file.

    "No tests" is no verdict: mutmut maps tests by tracing calls in pytest's own process, so it never sees code
    that only a forked child or a server subprocess runs (model_store's after-fork hooks). The module's own
    tests do run such code.
    """
    found = {}
    for meta in sorted(MUTANTS.glob("taxifare/**/*.py.meta")):
        results = json.loads(meta.read_text())["exit_code_by_key"]
        keys = [key for key, code in results.items() if code in (None, NO_TESTS)
                and (not names or any(fnmatch.fnmatchcase(key, name) for name in names))]
        if keys:
            found[meta] = keys
    return found


def preload() -> None:
    """Import PRELOADED and the installed pytest plugins once, before forking: each mutant's pytest would import the
    plugins again (~2 s of its ~5 s for a quick kill: schemathesis alone is heavy)."""
    for module in PRELOADED:
        __import__(module)
    for plugin in importlib.metadata.entry_points(group="pytest11"):
        try:
            plugin.load()
        except ImportError:  # a plugin pyproject.toml turns off (-p no:NAME) need not even import
            continue


def mapped_tests(mutant: str, stats: dict) -> list[str]:
    """The tests mutmut traced reaching the mutant's function (none for code only a forked child runs)."""
    return stats["tests_by_mangled_function_name"].get(mutant.rsplit("__mutmut_", 1)[0], [])


@functools.cache
def importing_files(module: str) -> frozenset[str]:
    """Test files that import the module by name (`from taxifare.model import trees`, `taxifare.model.trees`):
    where its own tests live, whatever the file is called (local_time's are in test_features.py)."""
    package, _, name = module.rpartition(".")
    imports = re.compile(rf"^\s*(from {re.escape(package)} import [^\n]*\b{name}\b|.*\b{re.escape(module)}\b)",
                         re.MULTILINE)
    return frozenset(f"tests/{path.name}" for path in (MUTANTS / "tests").glob("test_*.py")
                     if imports.search(path.read_text()))


def tests_in_order(mutant: str, stats: dict) -> list[str]:
    """mutmut's tests for the mutant's function: its module's own test files first, then each part fastest first.

    Own: tests/test_MODULE.py, then the other files that import the module. A function mutmut mapped no test to
    gets its module's own test file (see `unchecked`).
    """
    module = re.match(r"(.*?)\.x[_ǁ]", mutant)[1]  # mutmut's names: MODULE.x_FUNCTION or MODULE.xǁCLASSǁMETHOD
    own_file = f"tests/test_{module.rpartition('.')[2]}.py"
    durations = stats["duration_by_test"]
    mapped = mapped_tests(mutant, stats)
    if not mapped:
        return [own_file]
    importing = importing_files(module)

    def rank(test: str) -> tuple:
        file = test.split("::")[0]
        return file != own_file, file not in importing, durations.get(test, 0.0)

    return sorted(mapped, key=rank)


def start(mutant: str, tests: list[str]) -> int:
    """Fork a process that runs `tests` against `mutant` and exits with pytest's code."""
    pid = os.fork()
    if pid:
        return pid
    os.setpgid(0, 0)  # its own group: a time-out kills the servers its tests started too
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    import pytest
    from mutmut.mutation.trampoline import set_mutant_under_test

    set_mutant_under_test(mutant)
    code = pytest.main(["--rootdir=.", "--tb=no", "-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", *tests])
    os._exit(int(code))


def save(meta: Path, mutant: str, code: int, seconds: float) -> None:
    """Write a verdict into a mutmut result file, as mutmut itself records them."""
    data = json.loads(meta.read_text())
    data["exit_code_by_key"][mutant] = code
    data["durations_by_key"][mutant] = seconds
    meta.write_text(json.dumps(data, indent=4))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="mutant names or globs (default: every unchecked mutant)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="mutants tested at once")
    parser.add_argument("--limit", type=float, default=40.0, help="seconds before a mutant is left to mutmut")
    parser.add_argument("--unmapped-limit", type=float, default=150.0,
                        help="the same for a mutant of a function mutmut mapped no test to (its module's tests fork)")
    args = parser.parse_args()
    if not STATS_FILE.exists():
        parser.error(f"no {STATS_FILE}: run `make mutate` first (it makes mutants/ and maps tests to functions)")
    stats = json.loads(STATS_FILE.read_text())
    todo = [(meta, mutant) for meta, mutants in unchecked(args.names).items() for mutant in mutants]
    os.environ.setdefault(MODEL_CACHE_ENV, str(REPO / ".cache" / "test-model"))  # as `make mutate` sets it
    os.chdir(MUTANTS)
    sys.path.insert(0, str(MUTANTS))
    preload()
    print(f"{len(todo)} unchecked mutants, {args.jobs} at a time, {args.limit:g} s each at most", flush=True)
    running: dict[int, tuple[Path, str, float, float]] = {}
    counts = {"killed": 0, "survived": 0, "left to mutmut": 0}
    while todo or running:
        while todo and len(running) < args.jobs:
            meta, mutant = todo.pop(0)
            limit = args.limit if mapped_tests(mutant, stats) else args.unmapped_limit
            running[start(mutant, tests_in_order(mutant, stats))] = (meta, mutant, time.monotonic(), limit)
        time.sleep(0.05)
        for pid, (meta, mutant, began, limit) in list(running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            seconds = time.monotonic() - began
            if not done and seconds > limit:
                os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            elif not done:
                continue
            del running[pid]
            code = os.waitstatus_to_exitcode(status) if done else None
            verdict = {KILLED: "killed", SURVIVED: "survived"}.get(code, "left to mutmut")
            counts[verdict] += 1
            print(f"{verdict:>14} {seconds:5.1f} s  {mutant}", flush=True)
            if code == TEST_GONE:
                print("  pytest could not find a test mutmut mapped (renamed since?): `mutmut run` on any one mutant "
                      "remaps them", flush=True)
            if code in (KILLED, SURVIVED):
                save(meta, mutant, code, round(seconds, 3))
    print(", ".join(f"{count} {verdict}" for verdict, count in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
