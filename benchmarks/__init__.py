"""Side-by-side benchmarks: the Hugging Face Trainer and autoft on the same model, data and settings.

Run ``python -m benchmarks --help`` from the repository root; see ``benchmarks/README.md``.
"""
