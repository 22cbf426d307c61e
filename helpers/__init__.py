"""perceive-repro helpers: the logic behind the tutorial notebooks, in sub-packages by layer.

From the bottom up, each layer importing only those below it (``tests/test_architecture.py``
checks the directions and that nothing imports in a cycle):

``core``      where files live, the device and library versions, progress bars, the on-disk cache, settings objects
``metrics``   the kernel metrics and their inference: mutual k-NN, CKNNA, CKA, dyadic-robust intervals and tests
``data``      items and what a run hands on: prompts, media, manifests, datasets, the sensory lexicon, run artifacts
``lm``        the language-model package: loading, generation, representations, cached
``encoders``  the vision and audio encoders behind one interface: embedded, paper, BEATs, spectrograms
``analyses``  the notebooks' computations: tables, findings, ablations, transfer, rephrasing, the cue search
``run``       profiles, parameter checks, papermill execution, the reference check, comparisons across runs
``report``    figures, self-contained HTML views and the playground's widgets

The README's "Design" section has the table of every module and what it owns.
"""

__version__ = "0.1.0"
