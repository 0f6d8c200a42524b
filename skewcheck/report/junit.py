"""JUnit XML: one test case per gate rule; a blocked rule is a failure, an inconclusive one an error.

Every text from data goes through `xml_text`: XML 1.0 cannot carry ESC or BEL at all, and a
document that isn't well-formed shows nothing in CI."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from skewcheck.report import findings
from skewcheck.report.escape import xml_text


def render(doc: dict[str, Any]) -> str:
    checks = doc["verdict"]["checks"]
    failures = sum(c["status"] == "block" for c in checks)
    errors = sum(c["status"] == "inconclusive" for c in checks)
    suite = ET.Element("testsuite", name="skewcheck", tests=str(len(checks)), failures=str(failures),
                       errors=str(errors), skipped="0", time=f"{doc.get('duration_s', 0.0):.3f}")
    props = ET.SubElement(suite, "properties")
    for name, value in (("verdict", doc["verdict"]["status"]), ("requests", doc.get("requests", 0)),
                        ("primary", doc.get("primary", "")), ("shards", doc.get("shards", ""))):
        ET.SubElement(props, "property", name=name, value=xml_text(value))
    for c in checks:
        name = xml_text(c["rule"] + (f"[{c['router']}]" if c.get("router") else ""))
        case = ET.SubElement(suite, "testcase", classname=xml_text(f"skewcheck.{doc.get('kind', 'run')}"), name=name)
        message = xml_text(c["message"])
        if c["status"] == "block":
            ET.SubElement(case, "failure", message=message, type="blocked").text = _body(c)
        elif c["status"] == "inconclusive":
            ET.SubElement(case, "error", message=message, type="inconclusive").text = _body(c)
        else:
            ET.SubElement(case, "system-out").text = message
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def _body(c: dict[str, Any]) -> str:
    lines = [str(c["message"])]
    if c.get("value") is not None:
        lines.append(f"value: {c['value']}  limit: {c.get('limit')}")
    for finding in findings.of(c):
        lines += ["", findings.title(finding), findings.stack(finding)]
        if finding.get("fix"):
            lines.append(f"fix: {finding['fix']}")
    return "\n".join(xml_text(line) for line in lines)
