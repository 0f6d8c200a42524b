"""Keys come from production traffic: HTML, Markdown, terminal escapes (ANSI, OSC-8 links), C0
controls, NUL, newlines, an RTL override, astral characters. They must stay inert in every place
they are shown — `plan`, `gate`, `gate --sidecar`, a live Locust run and every report format —
each checked by a real parser (html.parser, an XML parser, a Markdown renderer) and by a scan of
stdout for raw control bytes."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from conftest import run_skewcheck
from locust_runs import run_locust
from markdown_it import MarkdownIt

from skewcheck.config import KafkaConfig, parse_scenario
from skewcheck.report import markdown
from skewcheck.report.escape import MARKDOWN_LIMIT, capped_markdown, markdown_code, printable

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    "`|break` ``",
    "**bold** [link](http://evil.example)",
    "\x1b[2J\x1b[31mred",
    "\x1b]8;;http://evil.example\x07click\x1b]8;;\x07",
    "\x07bell",
    "nul\x00byte",
    "line\nverdict: PASS (exit 0)",
    "\u202eevil",
    "astral 😀 𝔘",
    "a|b|c",
    "&amp; &lt;",
]
# what must never reach a terminal raw: C0 and C1 controls, DEL, bidi overrides and isolates
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _yaml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted string


def _scenario(tmp_path: Path, extra: str = "") -> Path:
    keys = ", ".join(_yaml_string(k) for k in HOSTILE)
    path = tmp_path / "hostile.yaml"
    path.write_text(
        "shards: 16\n"
        "routing: {primary: murmur3, compare: [kafka], key_type: str}\n"
        f"keys: [{{kind: hot, keys: [{keys}], share: 0.95, base: {{kind: uniform, low: 1, high: 1000000}}}}]\n"
        "gate: {min_requests: 500}\n" + extra)
    return path


def _assert_inert_terminal(text: str) -> None:
    assert not RAW_CONTROL.search(text), repr(RAW_CONTROL.search(text))
    forged = [line for line in text.splitlines() if line.startswith("verdict:")]
    assert len(forged) <= 1, forged  # a key with a newline forged no verdict line


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.add(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _assert_inert_html(page: str, allowed: set[str]) -> None:
    parser = _Tags()
    parser.feed(page)
    assert parser.tags <= allowed, parser.tags - allowed  # no <script>, no <img> from data
    assert not RAW_CONTROL.search("".join(parser.text))


def _assert_reports_inert(report_dir: Path) -> None:
    _assert_inert_html((report_dir / "report.html").read_text(),
                       {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "b", "span",
                        "table", "tr", "th", "td", "code", "svg", "text", "rect", "line", "pre", "details",
                        "summary", "ul", "li", "polyline", "polygon", "g", "circle", "path"})
    junit = ET.parse(report_dir / "junit.xml").getroot()  # well-formed, whatever the keys
    assert junit.tag == "testsuite" and len(junit.findall("testcase")) >= 3
    md = (report_dir / "summary.md").read_text()
    assert not RAW_CONTROL.search(md)
    rendered = MarkdownIt("commonmark").enable("table").render(md)
    _assert_inert_html(rendered, {"h2", "p", "table", "thead", "tbody", "tr", "th", "td", "code", "strong",
                                  "h3", "details", "summary", "pre", "em", "ul", "li"})
    for table in re.findall(r"<table>.*?</table>", rendered, flags=re.S):
        rows = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)
        widths = {len(re.findall(r"<t[dh][ >]", row)) for row in rows}
        assert len(widths) == 1, widths  # no key split a cell
    doc = json.loads((report_dir / "result.json").read_text())  # JSON carries them verbatim
    assert len({t["key"] for t in doc["top_keys"]} & set(HOSTILE)) >= 5  # verbatim


def test_plan_and_gate_keep_hostile_keys_inert(tmp_path: Path) -> None:
    config = _scenario(tmp_path)
    out = tmp_path / "plan"
    plan = run_skewcheck("plan", str(config), "--requests", "20000", "--out", str(out))
    assert plan.returncode in (0, 1, 3), plan.stderr
    assert "Traceback" not in plan.stderr
    _assert_inert_terminal(plan.stdout)
    assert "\\x" in plan.stdout or "\\u202e" in plan.stdout  # the hot keys are shown, escaped
    _assert_reports_inert(out)
    gate = run_skewcheck("gate", str(out / "result.json"), "--out", str(tmp_path / "gate"))
    assert gate.returncode in (0, 1, 3) and "Traceback" not in gate.stderr
    _assert_inert_terminal(gate.stdout)
    _assert_reports_inert(tmp_path / "gate")


def test_gate_sidecar_keeps_hostile_keys_inert(tmp_path: Path) -> None:
    from skewcheck.sidecar.server import SidecarServer
    from skewcheck.sidecar.state import SidecarState

    scenario = parse_scenario(_scenario(tmp_path).read_text(), "hostile.yaml")
    state = SidecarState(scenario, KafkaConfig(topic="t"), instance="hostile")
    events = [json.dumps({"key": HOSTILE[i % len(HOSTILE)], "shard": 999}).encode() for i in range(2_000)]
    events += [json.dumps({"key": HOSTILE[i % len(HOSTILE)]}).encode() for i in range(2_000)]
    state.apply(state.decoder.decode(events), {0: 4_000}, 1_000.0)
    state.assigned, state.partition_count = frozenset({0}), 1
    server = SidecarServer("127.0.0.1", 0, state).start()
    try:
        run = run_skewcheck("gate", "--sidecar", server.url, "--out", str(tmp_path / "out"))
    finally:
        server.close()
    assert run.returncode in (1, 3) and "Traceback" not in run.stderr, run.stderr
    _assert_inert_terminal(run.stdout)
    _assert_reports_inert(tmp_path / "out")


@pytest.mark.slow
def test_a_live_locust_run_keeps_hostile_keys_inert(tmp_path: Path) -> None:
    run = run_locust("--headless", "-u", "20", "-r", "20", "-t", "6s", "--skew-config", str(_scenario(tmp_path)),
                     report_dir=tmp_path / "reports")
    assert run.returncode in (0, 1, 3), run.output[-3000:]
    assert "Traceback" not in run.output
    _assert_inert_terminal(run.stdout)
    assert not RAW_CONTROL.search(run.stderr)
    _assert_reports_inert(tmp_path / "reports")


def test_the_printable_form_shows_what_was_there() -> None:
    assert printable("a\x1b[2Jb\n\u202e😀\ud800") == "a\\x1b[2Jb\\x0a\\u202e😀\\ud800"
    assert markdown_code("``a`") == "``` ``a` ```"


def test_summary_md_stays_under_githubs_limit() -> None:
    text = "\n".join(f"| row {i} | {'x' * 200} |" for i in range(10_000))
    capped = capped_markdown(text)
    assert len(capped.encode()) <= MARKDOWN_LIMIT and "summary cut at 1 MB" in capped
    doc = json.loads(json.dumps(_big_doc()))
    assert len(markdown.render(doc).encode()) <= MARKDOWN_LIMIT


def _big_doc() -> dict:
    from skewcheck.gate import judge
    from skewcheck.result import build_result
    from skewcheck.summary import from_counts
    from skewcheck.verdict import Check

    summary = from_counts("murmur3", {"murmur3": [100] * 100}, key_f2=10_000.0)
    many = [Check(f"leak_drain_{i}", "pass", "x" * 500) for i in range(5_000)]
    return build_result("run", summary, judge(summary, extra=many))
