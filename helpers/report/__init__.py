"""What a reader sees: one function per figure (``plots``), self-contained HTML views (``views``)
and the playground's ipywidgets UI (``widgets``).
"""
