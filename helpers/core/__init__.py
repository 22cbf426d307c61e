"""The ground every layer stands on: where files live (``paths``), the device and library versions
(``runtime``), progress bars (``progress``), the content-addressed on-disk cache (``cache``) and the
settings objects (``settings``). Imports nothing else of the package.
"""
