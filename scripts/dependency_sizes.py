"""How much each requirements set installs, measured in fresh virtual environments.

    python scripts/dependency_sizes.py

requirements.txt is what the buildpack installs for the deployed function (every cold start of
a new image pays for its size); requirements-train.txt adds training. Sizes are of the whole
venv after `pip install -r FILE`, and of the packages alone (minus a fresh venv's pip).
"""

import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETS = ("requirements.txt", "requirements-train.txt")


def tree_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def venv_mb(requirements: Path | None) -> float:
    with tempfile.TemporaryDirectory(prefix="taxifare-deps-") as folder:
        venv = Path(folder) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        if requirements is not None:
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-r", str(requirements)], check=True)
        return tree_mb(venv)


def main() -> None:
    empty = venv_mb(None)
    print(f"fresh venv (pip alone): {empty:.0f} MB")
    for name in SETS:
        total = venv_mb(REPO / name)
        print(f"pip install -r {name}: {total:.0f} MB venv, {total - empty:.0f} MB of packages")


if __name__ == "__main__":
    main()
