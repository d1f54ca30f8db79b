"""Accessibility checks in the browser: axe-core (vendored, see vendor/README.md)
and a plain "every form field has a label" check.

axe is injected with `page.evaluate` of the file's text, which runs through the
DevTools protocol and is not subject to the page's Content-Security-Policy: the
portal keeps its real CSP (no inline script) in every browser test, and the
tests notice if a page breaks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

AXE_PATH = Path(__file__).parent / "vendor" / "axe.min.js"
FAILING_IMPACTS = ("serious", "critical")
# WCAG 2.0/2.1/2.2 A and AA, plus axe's best practices (landmarks, headings, ...).
AXE_OPTIONS = {
    "runOnly": {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"],
    },
    "resultTypes": ["violations"],
}


@cache
def _axe_source() -> str:
    return AXE_PATH.read_text(encoding="utf-8")


def inject_axe(page) -> None:
    if page.evaluate("() => typeof window.axe === 'object'"):
        return
    # The library's own top-level code inside a function: it sets window.axe.
    page.evaluate("() => {\n" + _axe_source() + "\n}")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        raise RuntimeError(f"axe did not load from {AXE_PATH}")


def run_axe(page, options: dict | None = None) -> list[dict]:
    """axe's violations on the page as it is now."""
    inject_axe(page)
    return page.evaluate(
        "async (options) => (await window.axe.run(document, options)).violations",
        options or AXE_OPTIONS,
    )


def describe(violations: list[dict]) -> str:
    """Violations as a person reads them: rule, impact, what to do, where."""
    lines = []
    for violation in violations:
        lines.append(
            f"- [{violation['impact']}] {violation['id']}: {violation['help']} ({len(violation['nodes'])} element(s))"
        )
        lines.append(f"    {violation['helpUrl']}")
        for node in violation["nodes"][:5]:
            target = " ".join(str(part) for part in node.get("target", []))
            lines.append(f"    at {target}")
            lines.append(f"       {node.get('html', '')[:200]}")
            summary = (node.get("failureSummary") or "").replace("\n", "\n         ")
            if summary:
                lines.append(f"       {summary}")
        if len(violation["nodes"]) > 5:
            lines.append(f"    ... and {len(violation['nodes']) - 5} more")
    return "\n".join(lines)


UNLABELLED_FIELDS_JS = """
() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter((el) => !['hidden', 'submit', 'button', 'reset', 'image'].includes(el.type))
  .filter((el) => !el.closest('template'))
  .filter((el) => !(el.labels && el.labels.length)
    && !(el.getAttribute('aria-label') || '').trim()
    && !(el.getAttribute('aria-labelledby') || '').trim())
  .map((el) => el.outerHTML.slice(0, 200))
"""


def unlabelled_fields(page) -> list[str]:
    """Form fields (visible or not) with no <label>, aria-label or aria-labelledby."""
    return page.evaluate(UNLABELLED_FIELDS_JS)


@dataclass
class AxeAudit:
    """Audits pages and remembers which were audited (and what it found)."""

    audited_urls: set[str] = field(default_factory=set)
    reports: list[tuple[str, list[dict]]] = field(default_factory=list)

    def check(self, page, *, label: str) -> None:
        page.wait_for_load_state("load")
        violations = run_axe(page)
        self.audited_urls.add(page.url)
        self.reports.append((label, violations))
        failing = [v for v in violations if v["impact"] in FAILING_IMPACTS]
        unlabelled = unlabelled_fields(page)
        message = []
        if failing:
            message.append(f"axe found serious/critical accessibility violations on {label}:\n{describe(failing)}")
        if unlabelled:
            message.append(f"form fields without a label on {label}:\n  " + "\n  ".join(unlabelled))
        if message:
            raise AssertionError("\n".join(message))
