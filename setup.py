from setuptools import find_packages, setup

extras = {
    "test": ["pytest>=7", "ruff>=0.5", "tensorboard", "pydicom>=3.0", "matplotlib"],  # DICOM tests; benchmark plots
    "docs": ["mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.26", "matplotlib"],
    "tensorboard": ["tensorboard"],
    "dicom": ["pydicom>=3.0"],
    # The explanation app (examples/app.py, Spaces); gradio_client calls it from scripts and tests; pydicom reads the
    # DICOM files it takes.
    "app": ["gradio>=6", "gradio_client>=2", "pydicom>=3.0"],
}
extras["dev"] = sorted({dep for group in extras.values() for dep in group})

setup(
    name="diffusers-joint",
    version="0.1.0",
    description="Joint Diffusion for Hugging Face diffusers: one UNet that generates, classifies and explains.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    package_dir={"": "src"},
    packages=find_packages("src"),
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.1",
        "diffusers>=0.30",
        "transformers>=4.40",
        "accelerate>=0.30",
        "datasets>=2.18",
        "safetensors>=0.4",
        "evaluate>=0.4",
        "huggingface-hub>=0.23",
        "kornia>=0.7",
        "scikit-learn>=1.3",
        "numpy",
        "packaging",  # release comparisons (kornia's RandAugment semantics)
        "pillow",
        "tqdm",
    ],
    extras_require=extras,
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Topic :: Scientific/Engineering :: Medical Science Apps.",
    ],
)
