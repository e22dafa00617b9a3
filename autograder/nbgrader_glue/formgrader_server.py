"""The course's additions to the Jupyter server that formgrader runs in (JupyterLab started from the
course root). Enabled by the course's JupyterLab settings package (jupyter_config/, installed by
requirements.txt), which lists this module as a server extension.

- Every response under `<base_url>formgrader/` carries a Content-Security-Policy
  (autograder.nbgrader_glue.sanitise.formgrader_csp): scripts only from formgrader's static folder
  and the inline scripts nbgrader's templates put in the page's <head>. JupyterLab's own pages
  keep Jupyter's policy.
- nbgrader's exchange, which this course does not use (notebooks travel as a folder or a zip), is
  replaced by `NoExchange...` classes (configured in autograder/nbgrader_glue/config.py): formgrader
  then shows no "exchange directory ... does not exist" banner and logs no "[C] Unwritable directory"
  each time it lists the assignments, and its Release and Collect buttons say what to do instead.
"""

from __future__ import annotations

from jupyter_server.utils import url_path_join
from nbgrader.exchange.abc import ExchangeCollect, ExchangeError, ExchangeList, ExchangeReleaseAssignment
from tornado.web import OutputTransform

from autograder.nbgrader_glue.sanitise import formgrader_csp

NOT_USED = (
    "This course does not use nbgrader's exchange: release with `python -m autograder release` (students get "
    "notebooks/ as a folder or a zip) and collect with `python -m autograder grade <folder or zip>` (see the README)."
)


class NoExchangeList(ExchangeList):
    """Lists nothing: no assignment is ever in an exchange."""

    def start(self):
        return []


class NoExchangeReleaseAssignment(ExchangeReleaseAssignment):
    def start(self):
        raise ExchangeError(NOT_USED)


class NoExchangeCollect(ExchangeCollect):
    def start(self):
        raise ExchangeError(NOT_USED)


def _csp_transform(prefix: str) -> type[OutputTransform]:
    class FormgraderCSP(OutputTransform):
        """Adds the formgrader policy to a response under `prefix`, computed from its first chunk
        (formgrader writes each page whole, so that is the page)."""

        def __init__(self, request):
            super().__init__(request)
            self.static_url = f"{request.protocol}://{request.host}{prefix}static/"
            self.scoped = request.path.startswith(prefix)

        def transform_first_chunk(self, status_code, headers, chunk, finishing):
            if self.scoped:
                headers["Content-Security-Policy"] = formgrader_csp(chunk.decode("utf-8", "replace"), self.static_url)
            return status_code, headers, chunk

    return FormgraderCSP


def _load_jupyter_server_extension(serverapp) -> None:
    prefix = url_path_join(serverapp.base_url, "formgrader/")
    serverapp.web_app.add_transform(_csp_transform(prefix))
    serverapp.log.info("Course: formgrader pages carry a Content-Security-Policy (%s)", prefix)


def _jupyter_server_extension_points():
    return [{"module": __name__}]
