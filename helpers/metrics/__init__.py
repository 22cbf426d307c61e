"""The kernel metrics and their inference, what a reader audits against the paper: mutual k-NN,
CKNNA and unbiased CKA (``alignment``), the dyadic-robust standard errors and tests
(``knn_inference``), intervals, permutation nulls and Holm (``stats``), and the one per-item pairing
of an encoder with the LLM (``pairing``). numpy and scipy; imports only ``core``.
"""
