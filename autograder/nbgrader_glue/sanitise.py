"""What the course renders from a submission is inert: the HTML of formgrader's grading page and of
the feedback pages, sanitised where it is made, plus the Content-Security-Policies that make a
sanitiser miss run nothing.

A submission reaches a page through its markdown cells (and formgrader comments), its cell outputs
(HTML, SVG, JavaScript, Markdown, LaTeX, images and their metadata, widget views) and a few cell
fields the templates print. All of it is rendered by nbconvert's HTMLExporter under the course's
templates (autograder/nbgrader_glue/feedback_template), which pass it through this module:

- `SanitisedMarkdown` replaces the exporter's `markdown2html` filter: formulas become MathML (no
  MathJax, no network), the HTML then goes through `clean`.
- `clean` (also the exporter's `clean_html` filter) is nh3, the Python binding of the Rust sanitiser
  ammonia, with an allow-list: text, tables, lists, links to http(s)/mailto, images only as
  `data:image/...;base64`, MathML. No script, style, iframe, object, embed, form, meta, base or SVG
  element, no event handler or style attribute, no id (which could shadow the page's own).
- The templates' `output` block runs each rendered output area through `clean`, whatever its type:
  text/html, an image whose metadata carries an attribute, an SVG (shown as an <img>, where SVG runs
  no script), a JavaScript output (`InertOutputs` has made it text).
- `InertOutputs` (a render-time preprocessor; the stored notebook is never changed) turns JavaScript
  outputs into text and drops widget views.

nbconvert's own `sanitize_html` switch is on as well (it drops JavaScript and widget outputs), but
alone it does not suffice: nbgrader's formgrade and feedback templates render markdown cells
without it, its bleach allow-list drops MathML and images, and it leaves output metadata unchecked.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from pathlib import Path

import nh3
from jinja2 import pass_context
from nbconvert.preprocessors import Preprocessor
from traitlets.config import LoggingConfigurable

# MathML as latex2mathml writes it (autograder.nbgrader_glue.feedback.math_as_mathml) and browsers draw.
MATHML_TAGS = {
    "math", "mrow", "mi", "mo", "mn", "ms", "mtext", "mspace", "msup", "msub", "msubsup", "mfrac", "msqrt",
    "mroot", "mover", "munder", "munderover", "mstyle", "mtable", "mtr", "mtd", "mpadded", "mphantom",
    "menclose", "merror", "mfenced", "semantics", "annotation",
}  # fmt: skip
MATHML_ATTRIBUTES = {
    "math": {"display"},
    "mo": {"stretchy", "fence", "separator", "lspace", "rspace", "form", "largeop", "movablelimits", "symmetric"},
    "mover": {"accent"},
    "munder": {"accentunder"},
    "munderover": {"accent", "accentunder"},
    "mfrac": {"linethickness"},
    "mtable": {"columnalign", "rowspacing", "columnspacing"},
    "mtd": {"columnalign", "columnspan", "rowspan"},
    "mstyle": {"displaystyle", "scriptlevel", "mathvariant"},
    "mi": {"mathvariant"},
    "mn": {"mathvariant"},
    "mtext": {"mathvariant"},
    "mspace": {"width"},
    "menclose": {"notation"},
    "annotation": {"encoding"},
}
# ammonia's default tags, less those that carry a URL the course does not check (area, map).
TAGS = (set(nh3.ALLOWED_TAGS) - {"area", "map"}) | {"tfoot", "caption", "details", "summary"} | MATHML_TAGS
ATTRIBUTES = {
    "*": {"class", "title", "lang", "dir"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
    "ol": {"start"},
    **MATHML_ATTRIBUTES,
}
# An image is data the page carries, never a request: a remote or relative src would let a
# submission make the instructor's browser fetch a URL (formgrader's server API among them).
IMAGE_DATA = re.compile(r"data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=\s]*\Z")
SIZE = re.compile(r"\d{1,5}(\.\d+)?(px|%)?\Z")


def _allowed_value(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src":
        return value if IMAGE_DATA.match(value) else None
    if attribute in ("width", "height") and tag in ("img", "mspace"):
        return value if SIZE.match(value.strip()) else None
    if tag == "a" and attribute == "href" and value.lower().startswith("data:"):
        return None  # a link may go to a web page or an address, not to a document it carries
    return value


def clean(html) -> str:
    """`html` with everything but the allow-list removed (script and style elements with their content)."""
    text = html.decode("utf-8", "replace") if isinstance(html, bytes) else str(html)
    return nh3.clean(
        text,
        tags=TAGS,
        attributes=ATTRIBUTES,
        attribute_filter=_allowed_value,
        url_schemes={"http", "https", "mailto", "data"},
        url_relative="deny",
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


@pass_context
class SanitisedMarkdown(LoggingConfigurable):
    """The HTMLExporter's `markdown2html` filter, made safe: formulas as MathML, then the exporter's
    own markdown (attachments and all), then `clean`. Registered through `HTMLExporter.filters`,
    which constructs it with the exporter as its parent."""

    def __call__(self, context, source: str) -> str:
        from autograder.nbgrader_glue.feedback import REMEMBERED_CELLS, REMEMBERED_CHARS

        source = str(source)
        exporter = self.parent
        if len(source) > REMEMBERED_CHARS or context.get("cell", {}).get("attachments") or exporter.embed_images or exporter.lexer_options:
            return self.render(context, source)
        # Most markdown cells are the course's, the same on every student's page: a grading worker
        # renders each once (mistune, latex2mathml and nh3 took 0.3 s of CPU a student). Without
        # attachments or embedded images, the HTML depends on the text and the anchor settings alone.
        key = (source, exporter.anchor_link_text, exporter.exclude_anchor_links)
        if key not in RENDERED_MARKDOWN:
            if len(RENDERED_MARKDOWN) >= REMEMBERED_CELLS:
                RENDERED_MARKDOWN.clear()
            RENDERED_MARKDOWN[key] = self.render(context, source)
        return RENDERED_MARKDOWN[key]

    def render(self, context, source: str) -> str:
        from autograder.nbgrader_glue.feedback import math_as_mathml

        return clean(self.parent.markdown2html(context, math_as_mathml(source)))


RENDERED_MARKDOWN: dict[tuple, str] = {}  # (source, anchor settings) -> HTML, see SanitisedMarkdown


JAVASCRIPT_TYPES = ("application/javascript", "text/javascript", "application/x-javascript")
WIDGET_TYPES = ("application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json")


class InertOutputs(Preprocessor):
    """At render time (formgrader's page, the feedback page): a JavaScript output becomes text that
    says it was not run, and a widget view leaves only its text. It also hands the feedback
    template its Content-Security-Policy. (Execution counts need nothing: nbconvert refuses a
    notebook whose count is not a number.)"""

    def preprocess(self, nb, resources):
        nb.metadata.pop("widgets", None)
        resources["feedback_csp"] = FEEDBACK_CSP  # printed by feedback_template/feedback/index.html.j2
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            data = output.get("data")
            if not isinstance(data, dict):
                continue
            for mime in WIDGET_TYPES:
                data.pop(mime, None)
            for mime in JAVASCRIPT_TYPES:
                if mime in data:
                    script = str(data.pop(mime))
                    data["text/plain"] = f"[JavaScript output, shown as text and not run]\n{script[:2000]}" + ("\n[...]" if len(script) > 2000 else "")
        return cell, resources


# -- Content-Security-Policies ------------------------------------------------------------------

# The feedback page (opened from disk): no script at all, images only as data, styles inline, no
# request anywhere. Set by a <meta> first in the page's <head> (feedback_template/feedback/index.html.j2).
FEEDBACK_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; base-uri 'none'; form-action 'none'"

# nbgrader's formgrader pages call these inline handlers (formgrade_macros.html.j2,
# gradebook_notebook_submissions.tpl); each is allowed by its hash, so the same text is all a
# stray handler could run.
FORMGRADER_HANDLERS = ("toggle_name(true);", "toggle_name(false);", "toggleAllNames()")
INLINE_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.S | re.I)


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


@functools.cache
def formgrader_constant_scripts() -> tuple[str, ...]:
    """The hashes of the inline scripts of nbgrader's formgrader templates that hold no template
    expression (the same text on every page, such as the grading page's tooltips in its <body>)."""
    import nbgrader

    folder = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"
    bodies = {body for path in sorted(folder.rglob("*")) if path.suffix in (".tpl", ".j2") for attributes, body in INLINE_SCRIPT.findall(path.read_text())}
    return tuple(sorted(_hash(body) for body in bodies if body.strip() and "{{" not in body and "{%" not in body))


def formgrader_csp(page: str, static_url: str) -> str:
    """The policy of one formgrader page: scripts from formgrader's static folder, nbgrader's
    constant inline scripts, and the inline scripts of the page's <head>, each by its hash.
    nbgrader's templates put their page-specific scripts in the <head>; a submission's content
    (and a student's name) is rendered in the <body>, so nothing it carries is hashed."""
    head = page.split("</head>", 1)[0] if "</head>" in page else ""
    inline = {_hash(body) for attributes, body in INLINE_SCRIPT.findall(head) if "src=" not in attributes.lower() and body.strip()}
    handlers = [_hash(handler) for handler in FORMGRADER_HANDLERS]
    scripts = " ".join([static_url, *sorted(inline | set(formgrader_constant_scripts())), "'unsafe-hashes'", *handlers])
    return (
        f"default-src 'none'; script-src {scripts}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "font-src 'self' data:; connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
        "object-src 'none'; frame-ancestors 'self'"
    )
