"""MkDocs hooks (mkdocs.yml `hooks:`): add the generated pages to every build.

The CLI reference and the results pages are built from the code and from benchmarks/results/*.json each
time, never stored in git, so the site cannot show an option or a number the repository does not have.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from mkdocs.structure.files import File

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cli_reference  # noqa: E402
import results  # noqa: E402

_RESULTS_NAV = "Results"
_PAGES: dict[str, str] = {}  # generated in on_config (the nav needs their titles), added in on_files


def on_config(config):
    """Expand the nav's `Results: results/index.md` entry into one entry per results page."""
    _PAGES.clear()
    _PAGES["reference/cli.md"] = cli_reference.page()
    entries = ["results/index.md"]
    for name, (title, text) in results.pages().items():
        _PAGES[name] = text
        if name != "results/index.md":
            entries.append({title: name})
    for i, item in enumerate(config["nav"] or []):
        if isinstance(item, dict) and item.get(_RESULTS_NAV) == "results/index.md":
            config["nav"][i] = {_RESULTS_NAV: entries}
    return config


# A page may name a results file that a later benchmark run writes: "`benchmarks/results/X.json` once run".
# Once X.json exists, the build turns that phrase into a link to its generated page.
_ONCE_RUN = re.compile(r"`benchmarks/results/([\w.-]+)\.json` once run")


def on_page_markdown(markdown, page, config, files):
    def link(match):
        name = f"results/{match.group(1)}.md"
        if name not in _PAGES:
            return match.group(0)
        up = "../" * page.file.src_uri.count("/")
        return f"[{match.group(1)} results]({up}{name}) (`benchmarks/results/{match.group(1)}.json`)"

    return _ONCE_RUN.sub(link, markdown)


def on_files(files, config):
    for name, text in _PAGES.items():
        files.append(File.generated(config, name, content=text))
    return files
