"""The CLI reference page, generated from sspnet.cli's argparse parsers at every docs build.

Why generated: a hand-kept copy of `--help` drifts from the code the first time an option changes.
This walks the same parsers `sspnet VERB --help` prints (sspnet.cli.verb_parser), sub-commands included.
By hand: python docs/gen/cli_reference.py > cli.md
"""

from __future__ import annotations

import argparse
import importlib
import os


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _option_rows(parser: argparse.ArgumentParser) -> list[str]:
    formatter = parser._get_formatter()  # argparse's own %(default)s expansion, as --help shows it
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
            continue
        names = ", ".join(f"`{o}`" for o in action.option_strings) or f"`{action.dest}`"
        value = ""
        if action.nargs != 0:
            value = formatter._format_args(
                action, formatter._get_default_metavar_for_optional(action) if action.option_strings else action.dest
            )
        if action.choices and not isinstance(action, argparse._SubParsersAction):
            value = (
                "{" + ", ".join(map(str, action.choices)) + "}" + (f" {value}" if value and "{" not in value else "")
            )
        unset = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        default = "" if unset or action.required else f"`{action.default!r}`"
        help_text = formatter._expand_help(action) if action.help else ""
        rows.append(f"| {names} | {_cell(value) and '`' + _cell(value) + '`'} | {default} | {_cell(help_text)} |")
    return rows


def _parser_section(parser: argparse.ArgumentParser, title: str, level: int) -> list[str]:
    lines = [f"{'#' * level} {title}", ""]
    if parser.description:
        lines += [_cell(parser.description), ""]
    lines += ["```text", parser.format_usage().strip(), "```", ""]
    rows = _option_rows(parser)
    if rows:
        lines += ["| argument | value | default | what |", "|---|---|---|---|", *rows, ""]
    if parser.epilog:  # laid out by hand for a terminal: shown as is
        lines += ["```text", parser.epilog.strip("\n"), "```", ""]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                lines += _parser_section(sub, f"`{sub.prog}`", min(level + 1, 4))
    return lines


def page() -> str:
    """Markdown for every verb `sspnet --help` lists, in its order."""
    os.environ["COLUMNS"] = "100"  # usage lines wrap the same on every machine
    import sspnet.cli as cli

    lines = [
        "# Command-line reference",
        "",
        "Generated from the argparse parsers of `sspnet` at docs build time (`docs/gen/cli_reference.py`); "
        "`sspnet VERB --help` prints the same. Exit codes: [file safety and exit codes](../file-safety.md).",
        "",
        "Any verb also takes `--debug` (or `SSPNET_DEBUG=1`): show the traceback of every error.",
        "",
    ]
    verbs = cli._available_verbs()
    lines += ["| verb | what |", "|---|---|"]
    modules = {verb: importlib.import_module(f"sspnet.cli.{name}") for verb, name in verbs.items()}
    lines += [
        f"| [`{verb}`](#sspnet-{verb}) | {_cell(getattr(module, 'HELP', ''))} |" for verb, module in modules.items()
    ]
    lines.append("")
    for verb, module in modules.items():
        lines += _parser_section(cli.verb_parser(verb, module), f"sspnet {verb}", 2)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(page(), end="")
