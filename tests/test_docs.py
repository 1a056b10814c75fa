"""The docs site: it builds strictly from the code and benchmarks/results/*.json, and its generated pages
can only show what those hold (docs/gen/)."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"docs_gen_{name}", REPO / "docs" / "gen" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def results_gen():
    return _load("results")


def test_site_builds_strictly(tmp_path):
    """A broken link, a missing anchor or a nav entry without its page fails here (and so in CI)."""
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for path in RESULTS.glob("*.json"):
        assert (site / "results" / path.stem / "index.html").is_file(), f"no results page for {path.name}"
    cli_page = (site / "reference" / "cli" / "index.html").read_text()
    import sspnet.cli as cli

    for verb in cli._available_verbs():
        assert f"sspnet {verb}" in cli_page


def _numbers_in(value, out: list[float]) -> list[float]:
    """Every number a JSON holds: values, and numbers written inside its strings and keys."""
    if isinstance(value, bool) or value is None:
        return out
    if isinstance(value, (int, float)):
        out.append(float(value))
    elif isinstance(value, str):
        out += [float(t) for t in re.findall(r"\d+(?:\.\d+)?", value) + re.findall(r"\d+", value)]
    elif isinstance(value, dict):
        for key, item in value.items():
            _numbers_in(key, out)
            _numbers_in(item, out)
    elif isinstance(value, list):
        for item in value:
            _numbers_in(item, out)
    return out


def _held(token: str, numbers: list[float]) -> bool:
    """Is this displayed number some JSON number rounded to the digits shown?"""
    if re.search(r"[-:,]", token):  # a date, a time or a list written in a JSON string: part by part
        return all(_held(part, numbers) for part in re.split(r"[-:,]", token))
    if token.count(".") > 1:  # a version string
        return all(_held(part, numbers) for part in token.split("."))
    decimals = len(token.split(".")[1]) if "." in token else 0
    shown = float(token)
    return any(math.isclose(round(abs(v), decimals), shown, abs_tol=10 ** -(decimals + 3)) for v in numbers)


def test_every_generated_number_is_in_its_json(results_gen):
    """Independent of the generator's own bookkeeping: each number on a results page is, to the digits
    shown, a number of the JSON that page is generated from."""
    pages = 0
    for path in sorted(RESULTS.glob("*.json")):
        _, page = results_gen.render_file(path)
        numbers = _numbers_in(json.loads(path.read_text()), [])
        missing = [t for t in results_gen.number_tokens(page) if not _held(t, numbers)]
        assert not missing, f"{path.name}: page shows numbers its JSON does not hold: {missing[:10]}"
        pages += 1
    assert pages >= 1


def test_generator_refuses_a_number_not_read_from_the_json(results_gen, monkeypatch):
    """Planted bug: a renderer types a figure into its prose. The build must fail, naming it."""
    render = results_gen.renderer_for("int8")
    monkeypatch.setattr(results_gen, "renderer_for", lambda stem: lambda src: render(src) + "\nINT8 is 3.14x faster.\n")
    with pytest.raises(results_gen.UntracedNumber, match=r"3\.14"):
        results_gen.render_file(RESULTS / "int8.json")


def test_pages_follow_the_json_when_it_changes(results_gen, tmp_path):
    """A rerun benchmark changes the page: the figures come from the file, not from the generator."""
    data = json.loads((RESULTS / "nms_cpu.json").read_text())
    data["results"][0]["sspnet_ms"] = 12345.678
    copy = tmp_path / "nms_cpu.json"
    copy.write_text(json.dumps(data))
    _, page = results_gen.render_file(copy)
    assert "12345.68" in page


def test_every_results_json_gets_a_page_with_command_and_machine(results_gen, tmp_path):
    """A new benchmark JSON needs no generator change to appear; missing facts say 'not recorded'."""
    (tmp_path / "new_bench.json").write_text(json.dumps({"rows": [{"ms": 1.5}], "command": "python x.py --n 7"}))
    pages = results_gen.pages(tmp_path)
    page = pages["results/new_bench.md"][1]
    assert "python x.py --n 7" in page and "1.5" in page and "not recorded" in page
    assert "new_bench.md" in pages["results/index.md"][1]


def test_cli_reference_is_generated_from_the_parsers(monkeypatch):
    """An option added to a verb's parser shows up in the reference with its help text."""
    cli_reference = _load("cli_reference")
    import sspnet.cli.info as info

    add_arguments = info.add_arguments

    def with_new_option(parser):
        add_arguments(parser)
        parser.add_argument("--planted-option", default=7, help="planted help text")

    monkeypatch.setattr(info, "add_arguments", with_new_option)
    page = cli_reference.page()
    assert "`--planted-option`" in page and "planted help text" in page and "`7`" in page


def test_every_benchmark_script_is_on_the_benchmarking_page():
    """A benchmark nobody can find is not rerun: each script in benchmarks/ is listed with its rerun command."""
    page = (REPO / "docs" / "benchmarking.md").read_text()
    missing = [p.name for p in sorted((REPO / "benchmarks").glob("*.py")) if f"benchmarks/{p.name}" not in page]
    assert not missing, f"docs/benchmarking.md does not list: {missing}"


def _documented_commands(paths) -> list[tuple[str, str]]:
    """(file, command line) of every `sspnet VERB ...` line in a bash code block of these Markdown files,
    without its comment; lines with placeholders (`...`, `[optional]`) are left out."""
    found = []
    for path in paths:
        in_block = False
        for line in path.read_text().splitlines():
            if line.lstrip().startswith("```"):
                in_block = not in_block and line.strip() in ("```bash", "```sh", "```shell", "```console")
                continue
            command = line.split(" #")[0].strip()
            if in_block and command.startswith("sspnet ") and "..." not in command and "[" not in command:
                found.append((path.name, command))
    return found


def _refused(commands) -> list[str]:
    """The commands the current parsers refuse (unknown verb, unknown option, missing argument)."""
    import contextlib
    import io
    import shlex

    import sspnet.cli as cli

    verbs = cli._available_verbs()
    bad = []
    for name, command in commands:
        words = shlex.split(command)[1:]
        if words[0] not in verbs:
            bad.append(f"{name}: {command}: unknown verb {words[0]!r}")
            continue
        module = importlib.import_module(f"sspnet.cli.{verbs[words[0]]}")
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                cli.verb_parser(words[0], module).parse_args(words[1:])
        except SystemExit:
            bad.append(f"{name}: {command}")
    return bad


def test_documented_commands_parse():
    """Every command shown in the README and the docs is accepted by the current parsers (an option renamed
    or removed in the code fails here, not in a user's terminal)."""
    readmes = [REPO / "README.md", *sorted((REPO / "csrc").rglob("README.md"))]
    commands = _documented_commands([*readmes, *sorted((REPO / "docs").glob("*.md"))])
    assert len(commands) > 10
    bad = _refused(commands)
    assert not bad, "documented commands the parsers refuse:\n" + "\n".join(bad)


def test_documented_command_checker_catches_wrong_commands(tmp_path):
    """Planted bugs: a page documents an option and a verb that do not exist, and forgets a required argument."""
    page = tmp_path / "page.md"
    page.write_text(
        "```bash\nsspnet info --presets\nsspnet info --no-such-option\nsspnet no-such-verb x\n"
        "sspnet export\n```\n\n    sspnet info --not-in-a-code-block\n"
    )
    bad = _refused(_documented_commands([page]))
    assert len(bad) == 3 and "--no-such-option" in bad[0] and "no-such-verb" in bad[1] and "export" in bad[2]


# A reference to a document a reader of the repository does not have ("spec 8.3", "issue 12", "§6.1"):
# point at a docs page, the original code or nothing instead.
_PRIVATE_REFERENCE = re.compile(r"\bspec(?:'s)? ?§?\d|§ ?\d|\bissue #?\d+\b", re.IGNORECASE)


def test_private_reference_pattern():
    """Planted: the references it is for are found; ordinary uses of the words are not."""
    found = ["see spec 8.3", "(spec §6.1)", "the spec's 4.2", "issue 12, section 1", "§7.5", "Issue #11"]
    fine = ["spec = RowSpec()", "module_from_spec(spec)", "a spec file", "onnxruntime issues #9425", "the issue"]
    assert all(_PRIVATE_REFERENCE.search(text) for text in found)
    assert not any(_PRIVATE_REFERENCE.search(text) for text in fine)


def test_no_references_to_documents_readers_do_not_have():
    suffixes = {".py", ".cpp", ".h", ".cu", ".cuh", ".sh", ".yaml", ".md", ".txt"}
    roots = ["sspnet", "export", "runtime", "csrc", "benchmarks", "tests", "scripts", "docs"]
    hits = []
    for root in roots:
        for path in sorted((REPO / root).rglob("*")):
            if path.suffix in suffixes and path.is_file() and path != Path(__file__):
                for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                    if _PRIVATE_REFERENCE.search(line):
                        hits.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:100]}")
    assert not hits, "references to documents the repository does not have:\n" + "\n".join(hits)


def test_readme_stays_an_entry_point():
    """The README says what sspnet is and where to read on; results live in the generated docs pages."""
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "docs/getting-started.md" in readme and "scripts/demo.sh" in readme and "scripts/test.sh" in readme


def test_a_results_file_named_before_it_exists_becomes_a_link_once_it_does(monkeypatch):
    from types import SimpleNamespace

    hooks = _load("hooks")
    page = SimpleNamespace(file=SimpleNamespace(src_uri="streams.md"))
    text = "Numbers: `benchmarks/results/pipeline.json` once run."
    monkeypatch.setattr(hooks, "_PAGES", {})
    assert hooks.on_page_markdown(text, page, None, None) == text
    monkeypatch.setattr(hooks, "_PAGES", {"results/pipeline.md": "# pipeline"})
    assert "[pipeline results](results/pipeline.md)" in hooks.on_page_markdown(text, page, None, None)
    nested = SimpleNamespace(file=SimpleNamespace(src_uri="reference/cli.md"))
    assert "(../results/pipeline.md)" in hooks.on_page_markdown(text, nested, None, None)
