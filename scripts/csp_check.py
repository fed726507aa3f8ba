"""Walk the demo in Chromium and report every Content Security Policy violation.

    .venv/bin/python scripts/csp_check.py              # seeds a demo in a temporary dir (minutes)
    .venv/bin/python scripts/csp_check.py --url URL    # an already running demo

Logs in as several demo users, follows the site's own links breadth-first (GET only,
never a form) up to ``--pages`` pages per user, and records the browser's
``securitypolicyviolation`` events and CSP console errors. Exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections import deque
from pathlib import Path
from urllib.parse import urldefrag, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from screenshots import CHROMIUM_ARGS, _log_in, demo_server  # noqa: E402

USERS = ("tech", "qp", "qc", "coord", "admin", "auditor")
SKIP = ("/accounts/logout/", "/admin/", ".pdf", "/export.", "/download/", "/label/", "/api/schema/", "/api/v1/")
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
  e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + (e.sourceFile || '') + ':' + e.lineNumber));
"""


def walk(base_url: str, pages_per_user: int) -> list[str]:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("Debian's chromium is needed: apt-get install chromium")
    problems: list[str] = []
    host = urlparse(base_url).netloc
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        for username in USERS:
            context = browser.new_context()
            context.add_init_script(WATCH)
            page = context.new_page()
            console: list[str] = []

            def on_console(msg, sink: list[str] = console) -> None:
                if msg.type == "error" and "Content Security Policy" in msg.text:
                    sink.append(msg.text)

            page.on("console", on_console)
            _log_in(page, base_url, username)
            seen: set[str] = set()
            queue = deque([base_url + "/", base_url + "/api/docs/", base_url + "/batches/deviations/new/"])
            while queue and len(seen) < pages_per_user:
                url = urldefrag(queue.popleft())[0]
                if url in seen or any(s in url for s in SKIP):
                    continue
                seen.add(url)
                try:
                    response = page.goto(url)
                    page.wait_for_load_state("networkidle")
                except PlaywrightError as exc:  # a file download, not a page
                    print(f"  skipped {url}: {str(exc).splitlines()[0]}")
                    continue
                for violation in page.evaluate("window.__csp || []"):
                    problems.append(f"{username} {url}: {violation}")
                for text in console:
                    problems.append(f"{username} {url}: console: {text}")
                console.clear()
                if response is None or "text/html" not in (response.headers.get("content-type") or ""):
                    continue
                for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
                    if urlparse(href).netloc == host and href not in seen:
                        queue.append(href)
            print(f"{username}: {len(seen)} pages")
            context.close()
        browser.close()
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running demo (default: seed one in a temporary directory)")
    parser.add_argument("--pages", type=int, default=40, help="pages per user (default 40)")
    args = parser.parse_args()
    if args.url:
        problems = walk(args.url.rstrip("/"), args.pages)
    else:
        with demo_server() as url:
            problems = walk(url, args.pages)
    for problem in problems:
        print("CSP:", problem)
    print(f"{len(problems)} Content Security Policy violation(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
