"""Running notebooks and checking runs: profiles (``profiles/*.yaml``) and papermill execution
(``runner``, also ``perceive-run``), notebook parameter checks (``params``), the reference check
(``reference``, also ``perceive-check-reference``) and the paper's figures across runs (``crossrun``).
"""
