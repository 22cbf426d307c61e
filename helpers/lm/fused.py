"""Generation and its representation in one pass: the hidden states are reduced while decoding.

During incremental decoding every layer's hidden state of each new token is computed anyway.
:func:`generate_and_represent` reduces them on the fly with the hooks of the teacher-forced pass
(:func:`helpers.lm.representation._reduction_hooks`): the prefill gives the single-pass summaries
(the prompt mean and the last prompt token; a prompt prefix that all rows share is computed once
and its sum added to each row's mean), each decode step adds the fed token's states to
per-layer sums, and the prefix means are taken as a row's count of fed tokens reaches each
prefix length. One extra forward feeds the last sampled token of the rows that reach
``max_new_tokens`` (it has no successor to sample), so every generated token is counted once;
EOS is never fed (generations are cut at it, as :func:`helpers.lm.generate` cuts them).

Memory is O(rows × layers × hidden) per batch, beside the KV cache; no second pass over prompt +
generation is needed. The result equals :func:`helpers.lm.represent` over the same generations up
to floating point (different batch layouts and incremental attention), which
``tests/test_fused.py`` checks for every representation kind with left padding, EOS in
mid-batch and prefix lengths. The generated tokens are those of :func:`helpers.lm.generate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from helpers.lm.generation import Decoding, _generate
from helpers.lm.loading import LLM, decoder_parts
from helpers.lm.representation import _reduction_hooks, _unpack, _weights


class _StreamingReducer:
    """Per-layer sums of one decoding batch, fed by the reduction hooks (a :class:`~helpers.lm.generation.DecodeObserver`)."""

    def __init__(
        self, prompt_ids: Sequence[Sequence[int]], n_out: int, hidden: int, prefix_lengths: Sequence[int], device: Any
    ):
        n = len(prompt_ids)
        self.prompt_lengths = [len(p) for p in prompt_ids]
        self.inv_len = torch.tensor([1.0 / m for m in self.prompt_lengths], dtype=torch.float32, device=device)
        self.prefix_lengths = [int(t) for t in prefix_lengths]
        self.n_out, self.device = n_out, device
        self.gen = torch.zeros((n, n_out, hidden), dtype=torch.float32, device=device)
        self.prompt = torch.zeros((n, n_out, 2, hidden), dtype=torch.float32, device=device)  # prompt mean, last
        self.prefix = torch.zeros((n, n_out, len(self.prefix_lengths), hidden), dtype=torch.float32, device=device)
        self.count = torch.zeros(n, dtype=torch.long)
        self.phase, self.w, self.seen = "", None, set()
        self.n_shared = 0  # tokens of the prompt prefix all rows share (computed once, one row)
        self.shared_sum = torch.zeros((n_out, hidden), dtype=torch.float32, device=device)
        # sums of the rows still decoding, in batch order (rows leave as the KV cache drops them)
        self.active: list[int] = list(range(n))
        self.active_sum = self.gen

    # ------------------------------------------------------------------ DecodeObserver
    def shared(self, length: int) -> None:
        self._check_seen()
        self.n_shared = int(length)
        self.phase, self.seen = "shared", set()

    def prefill(self, mask: torch.Tensor) -> None:
        """Weights over the left-padded prompt tokens after the shared prefix: mean and last."""
        self._check_seen()
        width, s = mask.shape[1], self.n_shared
        w = torch.stack([_weights(m - s, 0, width - (m - s), width, [])[1:3] for m in self.prompt_lengths])
        self.w = w.to(self.device)
        self.w[:, 0] = (self.w[:, 0] > 0) * self.inv_len[:, None]  # a row's own tokens weigh 1/its prompt length
        self.phase, self.seen = "prefill", set()

    def feed(self, rows: list[int]) -> None:
        self._check_seen()
        if rows != self.active:  # rows left at EOS: keep their sums, go on with the others
            self._flush()
            self.active = list(rows)
            self.active_sum = self.gen[torch.as_tensor(rows, dtype=torch.long, device=self.device)]
        self.phase, self.seen = "decode", set()

    def _flush(self) -> None:
        """Write the active rows' sums back to their rows of :attr:`gen`."""
        if self.active_sum is not self.gen:
            self.gen[torch.as_tensor(self.active, dtype=torch.long, device=self.device)] = self.active_sum

    def fed(self, rows: list[int]) -> None:
        self._check_seen()
        r = torch.as_tensor(rows, dtype=torch.long)
        self.count[r] += 1
        for k, t in enumerate(self.prefix_lengths):
            hit = torch.nonzero(self.count[r] == t).flatten()  # positions in the active batch
            if len(hit):
                self.prefix[r[hit].to(self.device), :, k] = self.active_sum[hit.to(self.device)] / t

    # ------------------------------------------------------------------ hooks
    def reduce_into(self, idx: int, h: torch.Tensor) -> None:
        h = h.to(torch.float32)
        if self.phase == "shared":
            self.shared_sum[idx] = h[0].sum(0).to(self.device)
        elif self.phase == "prefill":
            w = self.w if self.w.device == h.device else self.w.to(h.device)
            self.prompt[:, idx] = torch.bmm(w, h).to(self.device)
            if self.n_shared:  # the shared prefix's part of every row's prompt mean
                self.prompt[:, idx, 0] += self.inv_len[:, None] * self.shared_sum[idx]
        elif self.phase == "decode":
            self.active_sum[:, idx] += h[:, -1].to(self.device)
        self.seen.add(idx)

    def _check_seen(self) -> None:
        if self.phase and self.seen != set(range(self.n_out)):
            raise RuntimeError(
                f"representation hooks saw layers {sorted(self.seen)}, expected 0..{self.n_out - 1}: "
                "the model does not run its layers the Llama/Qwen way"
            )

    # ------------------------------------------------------------------ results
    def summary(self, row: int, n_gen: int) -> dict[str, np.ndarray]:
        """Row ``row``'s summaries in :func:`helpers.lm.represent`'s format (NaN generative means without tokens)."""
        self._check_seen()
        self._flush()
        if int(self.count[row]) != n_gen:
            raise RuntimeError(f"row {row}: {int(self.count[row])} tokens fed for {n_gen} generated")
        gen = self.gen[row] / max(n_gen, 1)  # _unpack writes NaN generative means when n_gen == 0
        # a prefix at least as long as the generation is its whole mean (as represent's weights make it)
        prefixes = [self.prefix[row, :, k] if t <= n_gen else gen for k, t in enumerate(self.prefix_lengths)]
        out = torch.stack([gen, self.prompt[row, :, 0], self.prompt[row, :, 1], *prefixes], dim=1)
        return _unpack(out.cpu().numpy(), n_gen, bool(self.prefix_lengths))


@torch.inference_mode()
def generate_and_represent(
    llm: LLM,
    prompts: Sequence[str],
    decoding: Decoding,
    *,
    batch_size: int = 16,
    include_embeddings: bool = True,
    prefix_lengths: Sequence[int] = (),
    show_progress: bool = True,
) -> list[dict[str, Any]]:
    """:func:`helpers.lm.generate` and :func:`helpers.lm.represent` of its output in one decoding pass.

    Per prompt the generation fields of :func:`~helpers.lm.generate` (``prompt``, ``text``,
    ``prompt_ids``, ``gen_ids``, ``stopped_at_eos``) and ``representation``: ``gen_mean``,
    ``prompt_mean``, ``prompt_last`` (``[L, hidden]`` float32), ``n_gen`` and, with
    ``prefix_lengths``, ``prefix_means`` (``[len(prefix_lengths), L, hidden]``), in the layer order
    of :mod:`helpers.lm.representation`. A generation with no token (EOS first) has NaN
    generative means.
    """
    lengths = [int(t) for t in prefix_lengths]
    if any(t < 1 for t in lengths):
        raise ValueError(f"prefix lengths must be >= 1, got {lengths}")
    _base, layers, norm = decoder_parts(llm.model)
    n_out = len(layers) + int(include_embeddings)
    current: dict[str, _StreamingReducer] = {}

    def observe(batch_prompt_ids: list[list[int]]) -> _StreamingReducer:
        current["r"] = _StreamingReducer(batch_prompt_ids, n_out, llm.hidden_size, lengths, llm.device)
        return current["r"]

    with _reduction_hooks(layers, norm, include_embeddings, lambda idx, h: current["r"].reduce_into(idx, h)):
        return _generate(llm, prompts, decoding, batch_size, show_progress, observe=observe)


__all__ = ["generate_and_represent"]
