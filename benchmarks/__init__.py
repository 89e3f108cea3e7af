"""flamewatch's benchmark suite: ``python -m benchmarks [--quick]`` from the repository root.

See docs/benchmarks.md for what each figure means.
"""
