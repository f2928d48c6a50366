"""The benchmark side: providers, timing and the bytes model (``measure``), shape sets,
result CSVs (``runner``), plots, the performance gate, the offline tuning sweep and the
``tether-bench`` CLI (``cli``). Needs the ``bench`` extra (pandas, matplotlib, typer, rich).

The runtime never imports this package; it imports the runtime and the reference.
"""
