"""`tamga serve` runs this module: it starts warming the assistant, then runs Streamlit in the
same process, so the warm-up overlaps the server's start and the browser's first page load.

    python -m web.serve app.py --server.port 8501 ...   (the arguments of `streamlit run`)

The warm-up fills the same `st.cache_resource` the pages use (web/resources.py), because the
pages run in this process too.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    """Warm up in the background, then hand over to `streamlit run` with `argv`."""
    from streamlit.web import cli as streamlit_cli

    from web.resources import warm_up_in_background

    warm_up_in_background()
    sys.argv = ["streamlit", "run", *argv]
    streamlit_cli.main()


if __name__ == "__main__":
    main(sys.argv[1:])
