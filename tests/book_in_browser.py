"""The built book as a reader sees it: every page opened in a real browser (headless Chromium,
driven by Playwright) at a 1280 px wide window, measured, and photographed.

    python tests/book_in_browser.py [_build/html] [--chromium /usr/bin/chromium]

For each page it prints the content column's width, the widest table and the smallest figure
scale (displayed width / the image's own width), writes a full-page screenshot to
``_build/screenshots/<page>.png``, and exits 1 if a table is wider than the content column, a
figure is shown below 60% of its size, a link into the book leads nowhere, or a chapter's stderr (a warning, a traceback) shows on the page. The browser is offline: every request that does not go to
the local server is refused and counted, and a page whose math (``span.math``) is still raw TeX
once MathJax has run fails too, so the book must carry everything it shows. ``.ci/run`` runs it
after ``jupyter-book build .``.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import sys
import threading
from pathlib import Path

WIDTH, MIN_SCALE = 1280, 0.6

MEASURE = """() => {
  const col = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  // the width text and tables may use: the column's content box, without its padding
  const cs = getComputedStyle(col);
  const colW = col.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
  const tables = [...col.querySelectorAll('table')].map(t => ({w: Math.max(t.getBoundingClientRect().width, t.scrollWidth),
      cols: t.rows.length ? t.rows[0].cells.length : 0,
      head: (t.rows.length ? t.rows[0].innerText : '').slice(0, 60)}));
  const imgs = [...col.querySelectorAll('img')].filter(i => i.naturalWidth > 100).map(i => ({
      scale: i.getBoundingClientRect().width / i.naturalWidth, natural: i.naturalWidth,
      src: i.getAttribute('src')}));
  const maths = [...document.querySelectorAll('span.math, div.math')];
  const bs = String.fromCharCode(92);  // a backslash: TeX left as text starts with \( or \[
  const raw = maths.filter(m => !m.querySelector('mjx-container') &&
      (m.textContent.includes(bs + '(') || m.textContent.includes(bs + '[') || m.textContent.includes('$$')));
  // what a chapter printed to stderr (a warning, a traceback) shows on the page as a red box
  const stderr = [...col.querySelectorAll('div.output.stderr')].map(e => e.innerText.trim().slice(0, 100));
  // every link into the book itself (downloads, keys lists, other pages), resolved by the browser
  const links = [...col.querySelectorAll('a[href]')].map(a => a.href).filter(h => h.startsWith(location.origin));
  return {colW, tables, imgs, math: maths.length, rawMath: raw.map(m => m.textContent.slice(0, 40)), stderr, links};
}"""
# wait (up to 10 s) for MathJax to finish typesetting the page, where it is loaded
TYPESET = """async () => {
  for (let i = 0; i < 100 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++)
    await new Promise(r => setTimeout(r, 100));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  return !!(window.MathJax && MathJax.startup);
}"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # one line per request would drown the figures
        pass


def _serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_Quiet, directory=str(root))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


def measure(html: Path, chromium: str, shots: Path | None) -> list[dict]:
    """Per page: column width, widest table, smallest figure scale, and what is out of bounds."""
    from playwright.sync_api import sync_playwright

    pages = sorted(
        p for p in html.rglob("*.html") if "_static" not in p.parts and p.name not in ("search.html", "genindex.html")
    )
    srv, base = _serve(html)
    out = []
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=args)
            page = browser.new_page(viewport={"width": WIDTH, "height": 900})
            outside: list[str] = []

            def offline(route) -> None:  # a reader without network: only the book's own files load
                if route.request.url.startswith(base):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", offline)
            for p in pages:
                rel = p.relative_to(html).as_posix()
                del outside[:]
                page.goto(f"{base}/{rel}", wait_until="load")
                try:
                    mathjax = page.evaluate(TYPESET)
                except Exception:  # noqa: BLE001 - the page redirected (index.html): measure where it landed
                    page.wait_for_load_state("load")
                    mathjax = page.evaluate(TYPESET)
                page.wait_for_timeout(200)
                m = page.evaluate(MEASURE)
                wide = [t for t in m["tables"] if t["w"] > m["colW"] + 1]
                # a link the reader can follow must lead somewhere: fetched as the browser would
                dead = []
                for url in sorted({u.split("#", 1)[0] for u in m["links"]}):
                    if page.request.get(url).status != 200:
                        dead.append(url.removeprefix(base))
                small = [i for i in m["imgs"] if i["scale"] < MIN_SCALE]
                out.append(
                    dict(
                        page=rel,
                        col=m["colW"],
                        widest=max((t["w"] for t in m["tables"]), default=0.0),
                        min_scale=min((i["scale"] for i in m["imgs"]), default=None),
                        wide=wide,
                        small=small,
                        math=m["math"],
                        raw_math=m["rawMath"] if m["math"] else [],
                        mathjax=mathjax,
                        outside=sorted(set(outside)),
                        stderr=m["stderr"],
                        dead=dead,
                    )
                )
                if shots is not None:
                    shots.mkdir(parents=True, exist_ok=True)
                    page.screenshot(
                        path=str(shots / (rel.replace("/", "_").removesuffix(".html") + ".png")), full_page=True
                    )
            browser.close()
    finally:
        srv.shutdown()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html", nargs="?", default="_build/html")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--screenshots", default="_build/screenshots")
    a = ap.parse_args(argv)
    rows = measure(Path(a.html), a.chromium, Path(a.screenshots))
    bad = 0
    print(f"{'page':45s} {'column px':>9s} {'widest table px':>15s} {'smallest figure scale':>21s} {'math (raw)':>10s}")
    for r in rows:
        scale = "–" if r["min_scale"] is None else f"{r['min_scale']:.2f}"
        print(
            f"{r['page']:45s} {r['col']:9.0f} {r['widest']:15.0f} {scale:>21s} {r['math']:>4d} ({len(r['raw_math'])})"
        )
        for t in r["raw_math"][:3]:
            print(f"    MATH NOT RENDERED{'' if r['mathjax'] else ' (MathJax did not load)'}: {t!r}")
        for u in r["outside"][:5]:
            print(f"    ASKED FOR A FILE OUTSIDE THE BOOK (refused): {u}")
        for t in r["wide"]:
            print(
                f"    TABLE WIDER THAN THE COLUMN: {t['w']:.0f} px > {r['col']:.0f} px, {t['cols']} columns: {t['head']!r}"
            )
        for i in r["small"]:
            print(f"    FIGURE SHRUNK TO {i['scale']:.0%} of {i['natural']} px: {i['src']}")
        for e in r["stderr"]:
            print(f"    STDERR SHOWN ON THE PAGE: {e!r}")
        for u in r["dead"][:5]:
            print(f"    LINK LEADS NOWHERE: {u}")
        bad += len(r["wide"]) + len(r["small"]) + len(r["raw_math"]) + len(r["outside"]) + len(r["stderr"])
        bad += len(r["dead"])
    print(f"{len(rows)} pages, {bad} problem(s); screenshots in {a.screenshots}/")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
