"""The three reports of a run, written to the report directory: ``report.json``, ``junit.xml``, ``report.html``.

``report.json`` is the record (stable keys, only ever added to); JUnit lets CI systems show the run; the HTML
page is for the vendor: the verdict first, then each failure with the requirement's text, what the suite sent,
what came back and what was expected.

    paths = write_reports(report, Path("report"))
    paths["html"]                                  # Path('report/report.html')
"""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

from jinja2 import Environment, PackageLoader, select_autoescape

from conformance.results import Result, RunReport, Status

REPORT_JSON, JUNIT_XML, REPORT_HTML = "report.json", "junit.xml", "report.html"


def write_json(report: RunReport, path: Path) -> Path:
    path.write_text(json.dumps(report.as_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _exchanges_text(result: Result) -> str:
    lines = []
    for exchange in result.evidence:
        lines.append(f"> {exchange.method} {exchange.url}")
        lines.append(f"< {exchange.status if exchange.status is not None else exchange.error}")
        if exchange.response_body:
            lines.append(exchange.response_body[:500])
    return "\n".join(lines)


def junit_tree(report: RunReport) -> ET.ElementTree[ET.Element]:
    counts = report.counts()
    suites = ET.Element("testsuites", name="qala-conformance", tests=str(len(report.results)))
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"qala-conformance.{report.profile}",
        tests=str(len(report.results)),
        failures=str(counts["fail"]),
        errors=str(counts["error"]),
        skipped=str(counts["skip"] + counts["omit"]),
        time=f"{report.duration_s:.3f}",
        timestamp=report.started_at,
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("suiteVersion", report.suite_version),
        ("mandateVersion", report.mandate_version),
        ("baseUrl", report.module.base_url),
        ("verdict", report.verdict),
    ):
        ET.SubElement(properties, "property", name=name, value=value)
    for result in report.results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"{report.profile}.{result.requirement}",
            name=f"{result.test_id} ({result.severity})",
            time=f"{result.duration_ms / 1000:.3f}",
        )
        if result.status is Status.FAIL:
            failure = ET.SubElement(case, "failure", message=result.message, type=result.severity)
            failure.text = f"expected: {result.expected}\n{_exchanges_text(result)}"
        elif result.status is Status.ERROR:
            ET.SubElement(case, "error", message=result.message, type="suite-error")
        elif result.status in (Status.SKIP, Status.OMIT):
            ET.SubElement(case, "skipped", message=f"{result.status}: {result.message}")
    ET.indent(suites)
    return ET.ElementTree(suites)


def write_junit(report: RunReport, path: Path) -> Path:
    junit_tree(report).write(path, encoding="utf-8", xml_declaration=True)
    return path


def write_html(report: RunReport, path: Path) -> Path:
    environment = Environment(
        loader=PackageLoader("conformance", "templates"), autoescape=select_autoescape(["html", "j2"])
    )
    template = environment.get_template("report.html.j2")
    failures = [r for r in report.results if r.status in (Status.FAIL, Status.ERROR, Status.SKIP)]
    failures.sort(key=lambda r: bool(r.cause))  # root failures first, their consequences after (stable order)
    page = template.render(report=report, summary=report.summary(), failures=failures, roots=report.root_causes())
    path.write_text(page, encoding="utf-8")
    return path


def write_reports(report: RunReport, directory: Path) -> dict[str, Path]:
    """Write the three reports into ``directory`` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    return {
        "json": write_json(report, directory / REPORT_JSON),
        "junit": write_junit(report, directory / JUNIT_XML),
        "html": write_html(report, directory / REPORT_HTML),
    }
