"""The ``tether-bench`` command line from a checkout: ``python bench.py run --quick``.

The app lives in ``tether.benchmark.cli`` (what the installed ``tether-bench`` runs).
"""

from tether.benchmark.cli import app

if __name__ == "__main__":
    app()
