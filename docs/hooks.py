"""MkDocs hook: render diffusers-style docstring references (``[`~diffusers.DDPMScheduler`]``) as plain code."""

import re

# [<code>~diffusers.DDPMScheduler</code>] in rendered prose, and [`JointUNet2DModel`] inside rendered type columns.
_PROSE = re.compile(r"\[<code>~?(?:[\w]+\.)*([\w]+)</code>\]")
_IN_CODE = re.compile(r"\[`~?(?:[\w]+\.)*([\w]+)`\]")


def on_page_content(html, **kwargs):
    return _IN_CODE.sub(r"\1", _PROSE.sub(r"<code>\1</code>", html))
