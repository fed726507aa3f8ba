"""Screenshots of the UI shell for docs/screenshots/, taken as a user would see it.

    .venv/bin/python scripts/screenshots.py                 # own demo server, throw-away database
    .venv/bin/python scripts/screenshots.py --base-url http://127.0.0.1:8011   # a running demo

Without ``--base-url`` the script migrates and seeds a demo database in a temporary
directory, serves it with ``runserver`` on a free loopback port, and stops it at the
end, so the project's own database is untouched. It drives the system Chromium
(Debian's ``chromium`` package) through Playwright and logs in through the real
login form, so the pictures also show the audit events that logging in writes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "screenshots"
PASSWORD = os.environ.get("CARMFG_DEMO_PASSWORD", "carmfg-demo-2026")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
TABLET = {"width": 768, "height": 1024}
MAX_BYTES = 300_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):  # noqa: S310  (loopback URL we built)
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the demo server at {url} did not answer within {timeout_s:.0f} s")


@contextmanager
def demo_server():
    """A seeded demo on a free port, with its database in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="carmfg-shots-") as var_dir:
        env = {**os.environ, "CARMFG_VAR_DIR": var_dir, "CARMFG_ENV": "demo"}
        manage = [sys.executable, str(ROOT / "manage.py")]
        for command in (["migrate", "-v0"], ["seed_demo"]):
            subprocess.run(manage + command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
        port = _free_port()
        server = subprocess.Popen(  # noqa: S603
            [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_up(url)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=10)


def _log_in(page, base_url: str, username: str) -> None:
    page.goto(base_url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/")


def _shot(page, out: Path, name: str) -> Path:
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled", caret="initial")
    _shrink(path)
    size = path.stat().st_size
    flag = "" if size < MAX_BYTES else f"  (over {MAX_BYTES // 1000} KB!)"
    print(f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  {size // 1024} KB{flag}")
    return path


def _shrink(path: Path) -> None:
    """A flat UI needs few colours: a 256-colour palette keeps text crisp at a third of the size."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def take(base_url: str, out: Path, *, own_server: bool) -> list[Path]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("Debian's chromium is needed: apt-get install chromium")
    out.mkdir(parents=True, exist_ok=True)
    taken = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)

        def context(viewport):
            return browser.new_context(viewport=viewport, device_scale_factor=1, locale="en-GB")

        ctx = context(DESKTOP)
        page = ctx.new_page()
        page.goto(base_url + "/accounts/login/")
        taken.append(_shot(page, out, "login"))
        if own_server:
            # A wrong password shows the form's error state, and a red event in the trail.
            page.fill("#id_username", "tech")
            page.fill("#id_password", "not-the-password")
            page.click("button[type=submit]")
            taken.append(_shot(page, out, "login-error"))
        ctx.close()

        for username, name in [("tech", "home-technician"), ("qp", "home-qp"), ("admin", "home-site-admin")]:
            ctx = context(DESKTOP)
            page = ctx.new_page()
            _log_in(page, base_url, username)
            taken.append(_shot(page, out, name))
            ctx.close()

        ctx = context(DESKTOP)
        page = ctx.new_page()
        _log_in(page, base_url, "auditor")
        # The auditor holds a role at two sites: switch to the other one, as a user would.
        other = page.locator("#site-switch option:not([selected])").first.get_attribute("value")
        page.select_option("#site-switch", other)
        with page.expect_navigation():
            page.click(".site-switcher button[type=submit]")
        taken.append(_shot(page, out, "home-auditor"))
        page.goto(base_url + "/audit/")
        taken.append(_shot(page, out, "audit-list"))
        ctx.close()

        ctx = context(TABLET)
        page = ctx.new_page()
        _log_in(page, base_url, "auditor")
        taken.append(_shot(page, out, "home-auditor-tablet"))
        ctx.close()
        browser.close()
    return taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="a running demo (seeded with seed_demo); default: start one")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for the PNGs")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if args.base_url:
        take(args.base_url.rstrip("/"), args.out, own_server=False)
    else:
        with demo_server() as url:
            take(url, args.out, own_server=True)


if __name__ == "__main__":
    main()
