"""Reporters render a result document (`skewcheck.result/1`); they never compute."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from skewcheck.errors import UsageError
from skewcheck.report import html, junit, markdown
from skewcheck.report.result_json import write_json

FILE_NAMES = {"json": "result.json", "junit": "junit.xml", "markdown": "summary.md", "html": "report.html"}


def write_reports(doc: dict[str, Any], out_dir: str | Path, formats: Iterable[str]) -> dict[str, Path]:
    try:
        return _write(doc, Path(out_dir), formats)
    except OSError as exc:
        raise UsageError(f"cannot write reports to {out_dir}: {exc.strerror or exc}") from None


def _write(doc: dict[str, Any], out: Path, formats: Iterable[str]) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for fmt in formats:
        path = out / FILE_NAMES[fmt]
        if fmt == "json":
            write_json(doc, path)
        else:
            render = {"junit": junit.render, "markdown": markdown.render, "html": html.render}[fmt]
            path.write_text(render(doc), encoding="utf-8")
        written[fmt] = path
    if "markdown" in written and os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as summary:
            summary.write(written["markdown"].read_text(encoding="utf-8") + "\n")  # capped by render
    return written
