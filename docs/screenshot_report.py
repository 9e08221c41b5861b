"""Screenshots of the workflow's Snakemake HTML report, page by page.

Usage::

    python docs/screenshot_report.py results/report.html shots/ [--width 1400 --height 1000]

It writes one PNG per page of the report: the landing page (workflow description and rule
graph), the statistics, every results category and subcategory, and every result with
its caption (named after its labels), in the order the reader meets them, and prints each
path. ``--docs`` also copies the page of the ``reconstruction`` figure, caption beside it, to
``docs/img/report.png``: the screenshot the documentation shows (docs/workflow.md).

Needs Chromium and Playwright for Python, neither a dependency of the project, e.g.::

    apt-get install -y chromium
    python3 -m venv /tmp/pw && /tmp/pw/bin/pip install playwright
    /tmp/pw/bin/python docs/screenshot_report.py results/report.html shots/

The browser is the system's ``chromium`` (or ``--chromium PATH``), not one that Playwright
downloads. The report is a single-page app: the script drives it through the same
functions its buttons call (the globals ``app``, ``categories`` and ``results`` of the
report, Snakemake 9), so it needs no clicking by text.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

DOCS_IMAGE = Path(__file__).resolve().parent / "img" / "report.png"
SETTLE_MS = 800  # React re-renders and the rule graph (vega) draws after a view change


def slug(text: str) -> str:
    """A file-name-safe version of a category, subcategory or label."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def shot(page: Page, out: Path, name: str) -> Path:
    page.wait_for_timeout(SETTLE_MS)
    path = out / f"{name}.png"
    page.screenshot(path=str(path))
    print(path)
    return path


def set_view(page: Page, view: dict) -> None:
    page.evaluate("view => app.setView(view)", view)


def screenshot_report(
    report: Path, out: Path, width: int, height: int, chromium: str
) -> list[Path]:
    """Every page of ``report`` as PNGs in ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    taken = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(report.resolve().as_uri())
        page.wait_for_function("typeof app !== 'undefined' && app !== undefined")
        taken.append(shot(page, out, "00-landing"))

        set_view(page, {"content": "stats"})
        taken.append(shot(page, out, "01-statistics"))
        page.evaluate("app.showReportInfo()")
        taken.append(shot(page, out, "02-about"))
        set_view(page, {"navbarMode": "menu", "content": "rulegraph"})
        taken.append(shot(page, out, "03-menu"))

        categories = page.evaluate("categories")
        for c, category in enumerate(sorted(categories)):
            prefix = f"{10 + c:02d}-{slug(category)}"
            page.evaluate("c => app.showCategory(c)", category)
            taken.append(shot(page, out, prefix))
            for subcategory, paths in sorted(categories[category].items()):
                set_view(
                    page,
                    {"navbarMode": "subcategory", "category": category, "subcategory": subcategory},
                )
                sub = f"{prefix}-{slug(subcategory)}"
                taken.append(shot(page, out, sub))
                for path in paths:
                    result = page.evaluate("p => results[p]", path)
                    labels = result.get("labels") or {}
                    name = "-".join(f"{k}-{slug(v)}" for k, v in labels.items())
                    name = name or slug(Path(path).name)
                    page.evaluate("p => app.showResultInfo(p)", path)
                    if result.get("mime_type", "").startswith("image/"):
                        set_view(page, {"content": "img", "contentPath": result["data_uri"]})
                    taken.append(shot(page, out, f"{sub}-{name}"))
        browser.close()
    return taken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="the report, e.g. results/report.html")
    parser.add_argument("out", type=Path, help="folder for the PNGs (created)")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--docs", action="store_true", help=f"copy one page to {DOCS_IMAGE}")
    args = parser.parse_args(argv)
    if not args.report.is_file():
        parser.error(f"no report at {args.report}")
    taken = screenshot_report(args.report, args.out, args.width, args.height, args.chromium)
    if args.docs:
        page = next((p for p in taken if "result-reconstruction-figure" in p.stem), None)
        if page is None:
            parser.error(
                "the report has no reconstruction figure: build the figures first (synthetic world)"
            )
        DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(page, DOCS_IMAGE)
        print(f"copied {page.name} to {DOCS_IMAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
