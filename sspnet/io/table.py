"""The one plain-text table printer that the CLI verbs, evaluation and benchmark reports share.

It lives in sspnet.io (no model imports, no torch) so that library code can print tables without
importing the command-line layer."""


def print_table(rows, headers=None) -> None:
    """Print rows (sequences of cells) as aligned columns, with an optional header line."""
    rows = [tuple(str(c) for c in r) for r in rows]
    if headers:
        rows = [tuple(headers)] + rows
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if headers and k == 0:
            print("  ".join("-" * w for w in widths))
