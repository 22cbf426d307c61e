"""The notebooks' computations over a run: the alignment tables (``tables``), the prompt →
generation → representation step (``pipeline``), generation lengths, ablations and notebook 08's steps,
neighbours, the verdicts (``findings``), transfer (12), rephrasings (13), the cue search (14), the
playground's computations, and the simulated worlds that calibrate every test (``calibration``).
"""
