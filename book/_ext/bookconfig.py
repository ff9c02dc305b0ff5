"""Sphinx extension with the book build's own settings (listed in _config.yml).

- Kernels started by the build inherit VISIONBOOK_PROGRESS=0: progress bars are live widgets that
  mean nothing on a static page, so the HTML shows the training loops' one-line-per-epoch logs.
- The theme starts in light mode: with no stored preference the theme otherwise logs an
  "invalid theme mode" error in the browser console on a reader's first visit.
- sphinx-thebe registers its inline configuration script once per read phase, and a build with
  notebook execution has two, so each page declared THEBE_JS_URL twice (a console error):
  identical inline scripts are written once.
- nbclient's imitation of an Output-widget front end is switched off: it can leave a cell that uses
  ``ipywidgets.interact`` waiting forever for its reply (see
  visionbook.tools.runtimes.skip_output_widget_mimic).
"""

import os

from visionbook.tools.runtimes import skip_output_widget_mimic

# Before the theme's own script reads it: a first visit has no stored mode, and an empty one is
# reported as an error by the theme (sphinx-book-theme does not accept pydata's default_mode).
_DEFAULT_MODE = (
    'if (!localStorage.getItem("mode")) { document.documentElement.dataset.mode = "light"; }'
)


def _unique_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = (
            getattr(script, "filename", str(script)) or "",
            getattr(script, "attributes", {}).get("body"),
        )
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    os.environ["VISIONBOOK_PROGRESS"] = "0"
    skip_output_widget_mimic()
    app.add_js_file(None, body=_DEFAULT_MODE, priority=1)
    # html-page-context stops at the first handler that returns a template, so run first.
    app.connect("html-page-context", _unique_scripts, priority=1)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
