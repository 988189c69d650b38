#!/usr/bin/env python
# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
The explanation app: classify an image, explain it with a counterfactual, and generate class-guided samples, in a
browser, over a saved Joint Diffusion pipeline (a folder or a Hub model id).

    pip install -e ".[app]"
    python examples/app.py --pipeline joint-diffusion-model            # then open http://127.0.0.1:7860

Scripts can call the same functions with gradio_client (API names /classify, /counterfactual and /generate). The app
runs offline: analytics are off and nothing is shared unless --share is given.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before Gradio is imported: no calls home

from diffusers_joint.app import ExplanationApp, build_demo, launch_demo  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", required=True, help="A saved pipeline: a folder or a Hub model id.")
    parser.add_argument("--server_name", default="127.0.0.1", help="Address to listen on (0.0.0.0: the network).")
    parser.add_argument("--server_port", type=int, default=None, help="Port (default: 7860, or the next free one).")
    parser.add_argument("--num_inference_steps", type=int, default=250, help="Default denoising steps.")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu).")
    parser.add_argument("--title", default=None, help="Page title (default: the pipeline's name).")
    parser.add_argument("--share", action="store_true", help="Also open a public gradio.live link (off by default).")
    return parser.parse_args(argv)


def main(args) -> None:
    app = ExplanationApp.from_pretrained(args.pipeline, args.device, num_inference_steps=args.num_inference_steps)
    title = args.title or os.path.basename(os.path.normpath(args.pipeline))
    demo = build_demo(app, title=title)
    launch_demo(demo, args.server_name, args.server_port, share=args.share)


if __name__ == "__main__":
    main(parse_args())
