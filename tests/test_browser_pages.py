"""What a submission can run in a person's browser: nothing. Real pages in headless Chromium.

A fresh clone of the course; JupyterLab started from its root, as the README says; one student
("mallory") hands in notebook 1 with a catalogue of payloads in her written answers and in extra
markdown cells, and her autograded notebook carries the same catalogue as cell outputs (HTML,
JavaScript, SVG, Markdown, LaTeX, image data and metadata, widget views, errors).
Every payload, if it ran, would set `window.__pwned`, create a file through the server's
/api/contents and open a terminal through /api/terminals, with the instructor's login.

- formgrader's grading page of her submission, logged in, and her feedback page opened from disk
  (file://) run none of them: no flag, no file, no request to the server's /api/ in its log nor in
  the browser's own list of requests, no `javascript:` URL, no iframe/object/embed/form/meta in the
  page; formulas are typeset (MathML), the plot shows, the table shows; formgrader's own scripts
  still work.
- The same payload notebook rendered by plain nbconvert (no course sanitiser, no CSP) and opened
  the same way does run them: the detector detects.
- Issue 19's rough edges: no exchange banner and no "[C] Unwritable directory", names from the
  roster, check descriptions in the score list, images that fit; screenshots of both pages are
  written to tests/.artifacts/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import time
from pathlib import Path

import nbformat
import pytest
from browser import CHROMIUM, Chromium
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output
from test_formgrader import ASSIGNMENT, BIN, PLAIN_PATH, TOKEN, free_port, fresh_clone, get, get_or_none, run_plain

from autograder.sandbox.bubblewrap import sandbox_status

pytestmark = pytest.mark.skipif(not sandbox_status()[0], reason=f"no sandbox here: {sandbox_status()[1]}")
ARTIFACTS = Path(__file__).resolve().parent / ".artifacts"
STUDENT = "mallory"


@pytest.fixture(scope="module")
def chromium():
    if CHROMIUM is None:
        message = "headless Chromium is not installed (Debian: apt-get install -y chromium)"
        if os.environ.get("MBRL_REQUIRE_BROWSER") or os.environ.get("CI"):
            pytest.fail(message + "; CI must run the browser tests")
        pytest.skip(message)
    browser = Chromium()
    yield browser
    browser.close()


# -- the payload catalogue ------------------------------------------------------------------------
def action(origin: str, n: int) -> str:
    """JavaScript for payload n: the flag, then a file through /api/contents and a terminal,
    with the page's XSRF cookie (as JupyterLab's own requests send it). Base64 keeps it free of
    quotes and markdown syntax, so that each payload is only the trick it tests."""
    body = (
        "var x=(document.cookie.match(/_xsrf=([^;]+)/)||[])[1]||'';"
        f"fetch('{origin}/api/contents/pwned-{n}.txt',{{method:'PUT',credentials:'include',headers:{{'X-XSRFToken':x,'Content-Type':'application/json'}},"
        f"body:JSON.stringify({{type:'file',format:'text',content:'payload {n}'}})}});"
        f"fetch('{origin}/api/terminals',{{method:'POST',credentials:'include',headers:{{'X-XSRFToken':x}}}});"
    )
    return f"window.__pwned={n};eval(atob('{base64.b64encode(body.encode()).decode()}'))"


def markdown_payloads(origin: str) -> list[str]:
    """Written answers and markdown cells: tags, handlers, URLs, attribute and encoding tricks."""
    a = lambda n: action(origin, n)  # noqa: E731
    entity = lambda text: "".join(f"&#{ord(c)};" for c in text)  # noqa: E731
    b64 = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    svg_with_handler = "<svg xmlns='http://www.w3.org/2000/svg' onload=\"" + a(10) + '"/>'
    return [
        f"<script>{a(1)}</script>",
        f'<img src="x" onerror="{a(2)}">',
        f'<svg onload="{a(3)}"></svg>',
        f"<svg><script>{a(4)}</script></svg>",
        f"[a markdown link](javascript:{a(5)})",
        f'<a href="javascript:{a(6)}" id="click-me">an HTML link</a>',
        f'<iframe srcdoc="<script>parent.{a(7)}</script>"></iframe>',
        f'<iframe src="javascript:parent.{a(8)}"></iframe>',
        f'<object data="data:text/html;base64,{b64(f"<script>parent.{a(9)}</script>")}"></object>',
        f'<embed src="data:image/svg+xml;base64,{b64(svg_with_handler)}">',
        f'<meta http-equiv="refresh" content="0;url=javascript:{a(11)}">',
        f'<form action="{origin}/api/contents/pwned-12.txt" method="post"><button id="submit-me">Send</button></form>',
        f'<details open ontoggle="{a(13)}"><summary>open</summary>x</details>',
        f"<IMG SRC=x OnErRoR={a(14)}>",
        f"<img/src=x/onerror={a(15)}>",
        f'<a href="{entity("javascript:")}{a(16)}">an entity-encoded link</a>',
        f'<a href="java&#x09;script:{a(17)}">a tab in the scheme</a>',
        f'<img src=x onerror="{entity(a(18))}">',
        f'<math><mtext><table><mglyph><style><img src=x onerror="{a(19)}">',
        f'<noscript><p title="</noscript><img src=x onerror={a(20)}>"></noscript>',
        f'<input autofocus onfocus="{a(21)}">',
        f'<video><source onerror="{a(22)}"></video>',
        f"![an image](javascript:{a(23)})",
        f'<svg><a xlink:href="javascript:{a(24)}"><text x="0" y="15">svg link</text></a></svg>',
        f'<svg><animate onbegin="{a(25)}" attributeName="x" dur="1s"/></svg>',
        f'<a href="data:text/html;base64,{b64(f"<script>{a(26)}</script>")}">a data URL</a>',
        f'<base href="javascript:{a(27)}//">',
        f'<marquee onstart="{a(28)}">marquee</marquee>',
        f"$x$ <img src=x onerror={a(29)}> $y$",
        f'<style>@import url("{origin}/api/contents/pwned-30.txt");</style><link rel="stylesheet" href="{origin}/api/terminals">',
        f'<div style="background:url({origin}/api/contents/pwned-31.txt)">styled</div><img src="{origin}/api/contents/pwned-31b.txt">',
    ]


MARKDOWN_COUNT = 31


def tiny_plot_png() -> str:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(14, 3), dpi=100)  # wider than the page: it must be scaled to fit
    axes.plot([0, 1, 2, 3], [0, 1, 0, 1])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def output_payloads(origin: str) -> list[dict]:
    """Cell outputs as a student's code could make them (display data of any type, with metadata)."""
    a = lambda n: action(origin, n)  # noqa: E731
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" onload="{a(104)}"><script>{a(105)}</script></svg>'
    return [
        new_output("display_data", data={"text/html": f"<script>{a(101)}</script><b>html output</b>", "text/plain": "x"}),
        new_output("display_data", data={"text/html": f'<img src=x onerror="{a(102)}"><iframe srcdoc="<script>parent.{a(103)}</script>"></iframe>'}),
        new_output("display_data", data={"image/svg+xml": svg}),
        new_output("display_data", data={"application/javascript": a(106), "text/plain": "<IPython.core.display.Javascript object>"}),
        new_output("display_data", data={"text/markdown": f"<script>{a(107)}</script> markdown output"}),
        new_output("display_data", data={"text/latex": f"<script>{a(108)}</script>"}),
        new_output(
            "display_data", data={"image/png": "iVBORw0KGgo="}, metadata={"image/png": {"width": f"1 onerror={a(109)}", "alt": f'"><script>{a(110)}</script>'}}
        ),
        new_output("display_data", data={"image/png": f'x" onerror="{a(111)}'}),
        new_output("display_data", data={"text/html": f"<script>{a(112)}</script>"}, metadata={"text/html": {"isolated": True}}),
        new_output(
            "display_data",
            data={
                "application/vnd.jupyter.widget-view+json": {"model_id": f"</script><script>{a(113)}</script>", "version_major": 2, "version_minor": 0},
                "text/plain": "widget",
            },
        ),
        new_output("stream", name="stdout", text=f"<script>{a(114)}</script>\n"),
        new_output("error", ename=f"<script>{a(115)}</script>", evalue=f"<img src=x onerror={a(116)}>", traceback=[f"<script>{a(117)}</script>"]),
        new_output("execute_result", data={"text/plain": "1"}, execution_count=1),
        # what a plot and a table look like: these must still show
        new_output("display_data", data={"image/png": tiny_plot_png(), "text/plain": "<Figure>"}),
        new_output(
            "display_data",
            data={
                "text/html": '<table class="dataframe" id="results"><thead><tr><th>step</th><th>return</th></tr></thead><tbody><tr><td>1</td><td>950.0</td></tr></tbody></table>'
            },
        ),
    ]


OUTPUT_COUNT = 17  # payloads 101-117


def payload_notebook(release: Path, origin: str):
    """The release of notebook 1 with the markdown payloads in the written answers and after them."""
    nb = nbformat.read(release, as_version=4)
    payloads = markdown_payloads(origin)
    answers = [cell for cell in nb.cells if cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("solution")]
    for index, cell in enumerate(answers):
        cell.source = "My answer: the model predicts $\\Delta s$.\n\n" + "\n\n".join(payloads[index :: len(answers)])
    nb.cells += [new_markdown_cell(payload) for payload in payloads]
    nb.cells.append(new_code_cell("print('outputs')"))
    return nb


def add_output_payloads(autograded: Path, origin: str) -> None:
    """The autograded copy as the student's code could have made it: every kind of output."""
    nb = nbformat.read(autograded, as_version=4)
    cell = nb.cells[-1]
    assert cell.cell_type == "code" and "outputs" in cell.source
    cell.outputs = output_payloads(origin)
    nbformat.write(nb, autograded)


# -- the course, the server, the pages -----------------------------------------------------------
@pytest.fixture(scope="module")
def course(tmp_path_factory, chromium):
    course = fresh_clone(tmp_path_factory.mktemp("clone"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = course.parent / "server.log"
    env = {**os.environ, "PATH": PLAIN_PATH}
    env.pop("PYTHONPATH", None)
    server = subprocess.Popen(
        # DEBUG: Jupyter logs successful requests at debug level, and every request must show
        [
            str(BIN / "jupyter"),
            "lab",
            "--no-browser",
            f"--port={port}",
            f"--IdentityProvider.token={TOKEN}",
            "--ServerApp.allow_root=True",
            "--ServerApp.log_level=DEBUG",
        ],
        cwd=course,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log_path, "w"),
    )
    try:
        deadline = time.monotonic() + 120
        while get_or_none(base, "/api/status") is None:
            assert server.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.5)

        submitted = course / "grading" / "submitted" / STUDENT / ASSIGNMENT
        submitted.mkdir(parents=True)
        nbformat.write(payload_notebook(course / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", base), submitted / f"{ASSIGNMENT}.ipynb")
        done = run_plain(course, "nbgrader", "autograde", ASSIGNMENT)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        add_output_payloads(course / "grading" / "autograded" / STUDENT / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", base)
        done = run_plain(course, "nbgrader", "generate_feedback", ASSIGNMENT)
        assert done.returncode == 0, done.stderr[-3000:]
        # the roster names the students: formgrader shows its names
        (course / "roster.csv").write_text("student_id,name,email,lms_id\nmallory,Mallory O'Brien,m@example.org,501\n")
        done = subprocess.run(
            [str(BIN / "python"), "-m", "autograder", "export", "--roster", "roster.csv"], cwd=course, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        yield {"root": course, "base": base, "log": log_path}
    finally:
        server.terminate()
        server.wait(30)


def files_in(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if ".ipynb_checkpoints" not in path.parts and "__pycache__" not in path.parts}


API_REQUEST = re.compile(r"\b(GET|PUT|POST|PATCH|DELETE|OPTIONS)\s+/api/(contents|terminals|kernels|sessions)")

# What no page may contain after the course's renderer: an element that runs or loads something,
# an event handler, a javascript: or data:text URL.
DOM_AUDIT = """(() => {
  const found = [];
  for (const el of document.querySelectorAll('iframe, object, embed, form, meta[http-equiv=refresh], base, frame, frameset, applet, svg script, link[rel=import]')) found.push(el.outerHTML.slice(0, 80));
  const scripts = [...document.querySelectorAll('#notebook-container script, #notebook script')];
  for (const el of scripts) found.push(el.outerHTML.slice(0, 80));
  for (const el of document.querySelectorAll('#notebook-container *, #notebook *')) {
    for (const attr of el.attributes) {
      const value = attr.value.replace(/[\\s\\u0000-\\u001f]/g, '').toLowerCase();
      if (attr.name.startsWith('on') || value.startsWith('javascript:') || value.startsWith('data:text') || attr.name === 'srcdoc')
        found.push(el.tagName + ' ' + attr.name + '=' + attr.value.slice(0, 40));
    }
  }
  return found;
})()"""

SHOWS = """(() => {
  const maths = [...document.querySelectorAll('math')];
  const drawn = maths.filter(m => m.getBoundingClientRect().height > 0 || !m.textContent.trim());  // an empty <math> is a payload's
  const plots = [...document.querySelectorAll('img')].filter(i => i.src.startsWith('data:image/png') && i.naturalWidth > 500);
  const page = document.documentElement.clientWidth;
  return {
    maths: maths.length, mathsDrawn: drawn.length, mathIsMathML: maths.length > 0 && maths[0].namespaceURI === 'http://www.w3.org/1998/Math/MathML',
    plots: plots.length, plotWidth: plots.length ? plots[0].getBoundingClientRect().width : 0, plotNatural: plots.length ? plots[0].naturalWidth : 0, page: page,
    tables: [...document.querySelectorAll('table')].filter(t => t.textContent.includes('950.0')).length,
    rawTex: document.body.innerText.includes('$\\\\Delta s$'),
    pwned: window.__pwned === undefined ? null : window.__pwned,
  };
})()"""


def log_in(page, course) -> None:
    """Log in as the instructor does, through Jupyter's login form: the page and every payload on
    it then hold the login cookie and the XSRF cookie the server's API asks for."""
    page.open(f"{course['base']}/login", settle=0.5)
    # (a browser that is logged in already is sent on from /login: no form)
    page.evaluate(
        f"const box = document.querySelector('input[name=password]'); if (box) {{ box.value = '{TOKEN}'; document.querySelector('form').submit(); }} 0"
    )
    page.pump(3.0)
    cookies = {cookie["name"] for cookie in page.call("Network.getCookies", urls=[course["base"]])["cookies"]}
    assert "_xsrf" in cookies and any(name.startswith("username-") for name in cookies), cookies
    # The login lands on JupyterLab, whose own requests to /lab/api/ go on while it loads: leave it for
    # a blank page first, so that nothing JupyterLab asks for is counted against the page under test.
    page.open("about:blank", settle=1.5)


def open_and_watch(browser, url: str, course, *, login: bool = False) -> dict:
    """Open `url` (logged in first, if asked), click every link and button a payload put there,
    and report what happened."""
    page = browser.page()
    if login:
        log_in(page, course)
    log_before = course["log"].stat().st_size
    before = files_in(course["root"])
    try:
        page.open(url)
        result = {"audit": page.evaluate(DOM_AUDIT), "shows": page.evaluate(SHOWS), "page": page}
        # then a person clicks: the payload link and button, if they survived (a form would take the
        # page elsewhere: the flag is read before)
        page.evaluate("for (const id of ['click-me', 'submit-me']) { const el = document.getElementById(id); if (el) el.click(); } 0")
        page.pump(2.0)
        result["pwned_after_clicks"] = page.evaluate("window.__pwned === undefined ? null : window.__pwned")
        result["requests"] = page.requests()
        result["console"] = page.console()
    except Exception:
        page.close()
        raise
    time.sleep(1.0)  # the server logs a request as it finishes
    log = course["log"].read_bytes()[log_before:].decode("utf-8", "replace")
    result["api_log"] = [line for line in log.splitlines() if API_REQUEST.search(line)]
    result["new_files"] = sorted(files_in(course["root"]) - before)
    return result


def assert_inert(result: dict, origin: str) -> None:
    assert result["shows"]["pwned"] is None, f"payload {result['shows']['pwned']} ran"
    assert result["pwned_after_clicks"] is None, f"payload {result['pwned_after_clicks']} ran when clicked"
    assert result["new_files"] == [], result["new_files"]
    assert result["api_log"] == [], result["api_log"]
    to_api = [url for url in result["requests"] if "/api/" in url and "/formgrader/api/" not in url]
    assert to_api == [], to_api
    assert result["audit"] == [], result["audit"]


@pytest.fixture(scope="module")
def grading_page(course, chromium):
    status, body = get(course["base"], f"/formgrader/api/submitted_notebooks/{ASSIGNMENT}/{ASSIGNMENT}")
    assert status == 200, body[-2000:]
    submission = next(s for s in json.loads(body) if s["student"] == STUDENT)
    result = open_and_watch(chromium, f"{course['base']}/formgrader/submissions/{submission['id']}/?index=0", course, login=True)
    ARTIFACTS.mkdir(exist_ok=True)
    result["screenshot"] = result["page"].screenshot(ARTIFACTS / "formgrader-grading-page.png")
    result["formgrader_ready"] = result["page"].evaluate(
        # formgrader's models loaded the grades from its API and filled in the boxes' placeholders
        "typeof formgrader !== 'undefined' && document.querySelectorAll('input.extra-credit').length > 0"
        " && [...document.querySelectorAll('input.extra-credit')].every(i => i.getAttribute('placeholder') === '0')"
    )
    result["name_shown"] = result["page"].evaluate("document.querySelector('.name-shown') && document.querySelector('.name-shown').textContent.trim()")
    result["page"].close()
    return result


@pytest.fixture(scope="module")
def feedback_page(course, chromium):
    path = course["root"] / "grading" / "feedback" / STUDENT / ASSIGNMENT / f"{ASSIGNMENT}.html"
    result = open_and_watch(chromium, path.as_uri(), course, login=True)  # the instructor's browser, logged in to the server
    ARTIFACTS.mkdir(exist_ok=True)
    result["screenshot"] = result["page"].screenshot(ARTIFACTS / "feedback-page.png")
    result["score_list"] = result["page"].evaluate("[...document.querySelectorAll('#toc li a')].map(a => a.textContent.trim())")
    result["hint_width"] = result["page"].evaluate(
        "Math.min(...[...document.querySelectorAll('div.output_error pre, div.output_text pre')].map(p => p.getBoundingClientRect().width).filter(w => w > 0))"
    )
    result["page"].close()
    result["html"] = path.read_text()
    return result


def test_the_grading_page_runs_none_of_the_payloads(grading_page, course):
    assert_inert(grading_page, course["base"])


def test_the_grading_page_still_works_and_shows_formulas_plots_and_tables(grading_page):
    shows = grading_page["shows"]
    assert shows["maths"] >= 20 and shows["mathsDrawn"] == shows["maths"] and shows["mathIsMathML"], shows  # typeset, offline
    assert not shows["rawTex"], "a formula was left as TeX"
    assert shows["plots"] >= 1 and shows["plotWidth"] > 0, shows
    assert shows["tables"] == 1, shows
    assert grading_page["formgrader_ready"], grading_page["console"][-20:]  # formgrader's own scripts ran
    assert not [line for line in grading_page["console"] if "Content Security Policy" in line], grading_page["console"]  # none of its own was blocked
    assert not any(url.startswith("http") and "127.0.0.1" not in url for url in grading_page["requests"]), "a request left the machine (MathJax from a CDN?)"


def test_the_grading_page_names_the_student_from_the_roster(grading_page):
    assert grading_page["name_shown"] == "O'Brien, Mallory"


def test_the_feedback_page_runs_none_of_the_payloads(feedback_page, course):
    assert_inert(feedback_page, course["base"])
    assert all(url.startswith(("file://", "data:")) for url in feedback_page["requests"]), feedback_page["requests"]  # nothing from any server
    head = feedback_page["html"].split("</head>")[0]
    policy = re.search(r"<meta http-equiv=\"Content-Security-Policy\" content=\"([^\"]*)\"", head)
    assert policy is not None and policy.group(1).startswith("default-src 'none'") and "script-src" not in head.replace("default-src 'none'", "")


def test_the_feedback_page_shows_formulas_plots_tables_and_fits_the_page(feedback_page):
    shows = feedback_page["shows"]
    assert shows["maths"] >= 20 and shows["mathsDrawn"] == shows["maths"], shows
    assert shows["plots"] >= 1 and shows["plotNatural"] > shows["page"] >= shows["plotWidth"] > 0, shows  # scaled to the page
    assert shows["tables"] == 1, shows
    assert feedback_page["hint_width"] > 300, "hints are squeezed into a narrow column"


def test_the_feedback_score_list_names_what_each_check_checks(feedback_page):
    labels = feedback_page["score_list"]
    assert "Test cell" not in labels
    assert any(label.startswith("predict_delta returns one predicted change per row") for label in labels), labels


def test_formgrader_shows_no_exchange_banner_and_logs_nothing_critical(course, chromium):
    page = chromium.page()
    try:
        page.open(f"{course['base']}/formgrader/manage_assignments?token={TOKEN}")
        text = page.evaluate("document.body.innerText")
        students = None
        page.open(f"{course['base']}/formgrader/manage_students?token={TOKEN}", settle=4.0)
        students = page.evaluate("document.body.innerText")
    finally:
        page.close()
    assert "exchange directory" not in text and "01_deterministic_cem" in text, text[:2000]
    assert "O'Brien" in students and "None, None" not in students, students[:2000]
    log = course["log"].read_text()
    assert "[C " not in log and "Unwritable directory" not in log, [line for line in log.splitlines() if "Unwritable" in line or "[C " in line][:5]
    assert "not serializable" not in log


def test_the_detector_detects_the_payloads_on_an_unsanitised_page(course, chromium, tmp_path):
    """Control: the same autograded notebook through plain nbconvert (nbgrader's formgrader does
    this), no sanitiser, no CSP. Its payloads do run, so the checks above can fail."""
    autograded = course["root"] / "grading" / "autograded" / STUDENT / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    done = subprocess.run(
        [str(BIN / "jupyter"), "nbconvert", "--to", "html", "--template", "classic", "--output-dir", str(tmp_path), str(autograded)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = open_and_watch(chromium, (tmp_path / f"{ASSIGNMENT}.html").as_uri(), course, login=True)
    result["page"].close()
    ran = sorted({int(n) for url in result["requests"] for n in re.findall(r"pwned-(\d+)b?\.txt", url)})
    print(f"unsanitised page: {len(ran)} of {MARKDOWN_COUNT + OUTPUT_COUNT} payloads reached the server's API: {ran}")
    assert result["shows"]["pwned"] is not None and len(ran) >= 10, (result["shows"], ran)
    assert any("/api/terminals" in url for url in result["requests"])


def test_the_catalogue_is_as_large_as_the_report_says():
    assert len(markdown_payloads("http://x")) == MARKDOWN_COUNT
    ids = {int(n) for output in output_payloads("http://x") for n in re.findall(r"__pwned=(\d+)", json.dumps(output))}
    assert ids == set(range(101, 101 + OUTPUT_COUNT))
