"""JUnit XML: one test case per gate rule; a blocked rule is a failure, an inconclusive one an error."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from skewcheck.report import findings


def render(doc: dict[str, Any]) -> str:
    checks = doc["verdict"]["checks"]
    failures = sum(c["status"] == "block" for c in checks)
    errors = sum(c["status"] == "inconclusive" for c in checks)
    suite = ET.Element("testsuite", name="skewcheck", tests=str(len(checks)), failures=str(failures),
                       errors=str(errors), skipped="0", time=f"{doc.get('duration_s', 0.0):.3f}")
    props = ET.SubElement(suite, "properties")
    for name, value in (("verdict", doc["verdict"]["status"]), ("requests", doc.get("requests", 0)),
                        ("primary", doc.get("primary", "")), ("shards", doc.get("shards", ""))):
        ET.SubElement(props, "property", name=name, value=str(value))
    for c in checks:
        name = c["rule"] + (f"[{c['router']}]" if c.get("router") else "")
        case = ET.SubElement(suite, "testcase", classname=f"skewcheck.{doc.get('kind', 'run')}", name=name)
        if c["status"] == "block":
            ET.SubElement(case, "failure", message=c["message"], type="blocked").text = _body(c)
        elif c["status"] == "inconclusive":
            ET.SubElement(case, "error", message=c["message"], type="inconclusive").text = _body(c)
        else:
            ET.SubElement(case, "system-out").text = c["message"]
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def _body(c: dict[str, Any]) -> str:
    lines = [c["message"]]
    if c.get("value") is not None:
        lines.append(f"value: {c['value']}  limit: {c.get('limit')}")
    for finding in findings.of(c):
        lines += ["", findings.title(finding), findings.stack(finding)]
        if finding.get("fix"):
            lines.append(f"fix: {finding['fix']}")
    return "\n".join(lines)
