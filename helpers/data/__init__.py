"""Items and what a run hands on: cue templates and prompts (``prompts``), images and sounds
(``media``), the manifest schema and its checks (``manifest``), every source turned into a manifest
(``datasets``), the sensory word lists (``lexicon``) and the run's hand-off files (``artifacts``).
"""
