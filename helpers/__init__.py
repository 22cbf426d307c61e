"""perceive-repro helpers: the logic behind the tutorial notebooks.

One module per concern (see ``docs/DESIGN.md``): ``data``, ``prompts``, ``llm``,
``encoders``, ``alignment``, ``stats``, ``cache``, ``plots``, ``runner``.
Notebooks narrate and plot; everything a test needs lives here.
"""

__version__ = "0.1.0"
