"""perceive-repro helpers: the logic behind the tutorial notebooks.

One module per concern; the README's "Design" section has the table of every module
and what it owns (a test keeps it in step with this folder). Notebooks narrate and plot;
everything a test needs lives here. Nothing in this package imports in a cycle
(``tests/test_architecture.py``).
"""

__version__ = "0.1.0"
