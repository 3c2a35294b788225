"""The benchmarks' closing table: measure, measured value, target, and whether it is met."""

Row = tuple[str, str, str, bool | None]
"""(measure, measured, target, ok): ok None for reference rows that have no target."""


def print_targets(rows: list[Row]) -> int:
    """Print the table; exit status 1 if any target is missed, so `make bench` fails loudly."""
    table = [("measure", "measured", "target", "ok"),
             *((name, value, target, "" if ok is None else "yes" if ok else "NO") for name, value, target, ok in rows)]
    widths = [max(len(row[column]) for row in table) + 2 for column in range(3)]
    for row in table:
        print("".join(f"{cell:<{width}}" for cell, width in zip(row, widths, strict=False)) + row[3])
    return 0 if all(ok is not False for *_, ok in rows) else 1
