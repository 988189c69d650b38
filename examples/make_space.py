#!/usr/bin/env python
# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Write a Hugging Face Space (Gradio SDK) that serves the explanation app on a model pushed to the Hub:

    python examples/make_space.py --model_id user/joint-pneumonia-50 --output_dir joint-pneumonia-space

The folder holds app.py, requirements.txt, README.md (the Space's YAML header) and, by default, a copy of the
diffusers_joint package. Upload it as a Space with huggingface_hub, e.g.
`hf upload user/joint-pneumonia-demo joint-pneumonia-space . --repo-type space`.
"""

from __future__ import annotations

import argparse

from diffusers_joint.app import write_space


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_id", required=True, help="Hub id of the trained pipeline (owner/name).")
    parser.add_argument("--output_dir", required=True, help="Folder to write the Space to.")
    parser.add_argument("--title", default=None, help="Space title (default: the model's name).")
    parser.add_argument("--num_inference_steps", type=int, default=250, help="The app's default denoising steps.")
    parser.add_argument(
        "--package_spec",
        default=None,
        help="pip requirement installing diffusers-joint on the Space (default: copy the installed package in).",
    )
    return parser.parse_args(argv)


def main(args) -> None:
    folder = write_space(args.output_dir, args.model_id, args.title, args.num_inference_steps, args.package_spec)
    print(f"Wrote the Space for {args.model_id} to {folder}")


if __name__ == "__main__":
    main(parse_args())
