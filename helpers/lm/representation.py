"""The teacher-forced representation pass: per-layer means over prompt and generated tokens.

:func:`represent` does one forward pass over ``prompt + generated tokens`` and returns
per-layer means (over generated tokens, over prompt tokens, at the last prompt token, and
over every requested prefix of the generation). The reductions are computed by forward
hooks while the hidden states stream through the network, so the ``layers x tokens x
hidden`` stack is never held in memory.

Hidden-state convention (identical to HF ``output_hidden_states=True``): entry 0 is the input
of the first decoder layer (the token embeddings), entry ``i`` the output of decoder layer
``i`` for ``1 <= i < n_layers``, and the last entry is the output of the final norm (which
replaces the raw output of the last decoder layer). With ``include_embeddings=False`` entry
0 is dropped, leaving ``n_layers`` entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import torch

from helpers.core.progress import progress
from helpers.lm.loading import LLM, decoder_parts

#: Rows of the averaging weights before the prefixes: generated mean, prompt mean, last prompt token.
_FIXED_ROWS = ("gen_mean", "prompt_mean", "prompt_last")


def _first_tensor(x: Any) -> torch.Tensor:
    return x[0] if isinstance(x, (tuple, list)) else x


def _weights(n_prompt: int, n_gen: int, offset: int, width: int, prefix_lengths: Sequence[int]) -> torch.Tensor:
    """Rows of averaging weights over sequence positions: gen mean, prompt mean, prompt last, prefixes."""
    w = torch.zeros((3 + len(prefix_lengths), width), dtype=torch.float32)
    p0, g0 = offset, offset + n_prompt
    if n_gen:
        w[0, g0 : g0 + n_gen] = 1.0 / n_gen
    w[1, p0:g0] = 1.0 / n_prompt
    w[2, g0 - 1] = 1.0
    for k, t in enumerate(prefix_lengths):
        m = min(int(t), n_gen)
        if m:
            w[3 + k, g0 : g0 + m] = 1.0 / m
    return w


def _check_inputs(
    prompt_ids: Sequence[Sequence[int]],
    gen_ids: Sequence[Sequence[int]],
    prefix_lengths: Sequence[int],
    padding_side: str,
    on_empty: str,
) -> list[int]:
    """Validate :func:`represent`'s arguments; returns the prefix lengths as ints."""
    if len(prompt_ids) != len(gen_ids):
        raise ValueError(f"{len(prompt_ids)} prompts but {len(gen_ids)} generations")
    if on_empty not in ("error", "nan"):
        raise ValueError(f"on_empty must be 'error' or 'nan', got {on_empty!r}")
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    lengths = [int(t) for t in prefix_lengths]
    if any(t < 1 for t in lengths):
        raise ValueError(f"prefix lengths must be >= 1, got {lengths}")
    for i, (p, g) in enumerate(zip(prompt_ids, gen_ids)):
        if not p:
            raise ValueError(f"item {i} has an empty prompt")
        if not g and on_empty == "error":
            raise ValueError(
                f"item {i} has no generated tokens (prompt of {len(p)} tokens), so it has no generative "
                "representation; drop it or pass on_empty='nan'"
            )
    return lengths


@contextmanager
def _reduction_hooks(
    layers: Sequence[Any], norm: Any, include_embeddings: bool, reduce_into: Callable[[int, torch.Tensor], None]
) -> Iterator[None]:
    """Forward hooks that hand each hidden state (output index, tensor) to ``reduce_into``.

    Index 0 is the first layer's input (with ``include_embeddings``), then each decoder layer's
    output but the last, then the final norm's output. The hooks are removed on exit.
    """
    hooks = []
    try:
        if include_embeddings:

            def pre0(_m: Any, args: tuple, kwargs: dict) -> None:
                reduce_into(0, args[0] if args else kwargs["hidden_states"])

            hooks.append(layers[0].register_forward_pre_hook(pre0, with_kwargs=True))
        off = int(include_embeddings)
        for i in range(len(layers) - 1):  # the last layer's output is superseded by the final norm

            def post(_m: Any, _a: Any, output: Any, idx: int = i + off) -> None:
                reduce_into(idx, _first_tensor(output))

            hooks.append(layers[i].register_forward_hook(post))
        n_out = len(layers) + off

        def post_norm(_m: Any, _a: Any, output: Any) -> None:
            reduce_into(n_out - 1, _first_tensor(output))

        hooks.append(norm.register_forward_hook(post_norm))
        yield
    finally:
        for h in hooks:
            h.remove()


def _layout(
    rows: Sequence[int],
    prompt_ids: Sequence[Sequence[int]],
    gen_ids: Sequence[Sequence[int]],
    pad_id: int,
    padding_side: str,
    prefix_lengths: Sequence[int],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One padded batch: (input ids, attention mask, position ids, averaging weights ``[rows, means, width]``)."""
    lengths = [len(prompt_ids[i]) + len(gen_ids[i]) for i in rows]
    width = max(lengths)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    ws = []
    for r, (i, n) in enumerate(zip(rows, lengths)):
        off = width - n if padding_side == "left" else 0
        ids[r, off : off + n] = torch.as_tensor(list(prompt_ids[i]) + list(gen_ids[i]))
        mask[r, off : off + n] = 1
        ws.append(_weights(len(prompt_ids[i]), len(gen_ids[i]), off, width, prefix_lengths))
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, positions, torch.stack(ws)


def _unpack(out: np.ndarray, n_gen: int, with_prefixes: bool) -> dict[str, np.ndarray]:
    """One item's summaries from its ``[L, means, hidden]`` slice (NaN generative means when ``n_gen == 0``)."""
    item = {name: out[:, k].copy() for k, name in enumerate(_FIXED_ROWS)}
    item["n_gen"] = np.asarray(n_gen, dtype=np.int64)
    if with_prefixes:
        item["prefix_means"] = np.ascontiguousarray(out[:, len(_FIXED_ROWS) :].transpose(1, 0, 2))
    if not n_gen:
        item["gen_mean"][:] = np.nan
        if with_prefixes:
            item["prefix_means"][:] = np.nan
    return item


@torch.inference_mode()
def represent(
    llm: LLM,
    prompt_ids: list[list[int]],
    gen_ids: list[list[int]],
    batch_size: int = 8,
    include_embeddings: bool = True,
    prefix_lengths: Sequence[int] = (),
    *,
    padding_side: Literal["left", "right"] = "right",
    on_empty: Literal["error", "nan"] = "error",
    show_progress: bool = True,
) -> list[dict[str, np.ndarray]]:
    """Per-layer summaries of one teacher-forced pass over ``prompt_ids[i] + gen_ids[i]``.

    Returns per item float32 arrays of shape ``[L, hidden]`` with ``L = n_layers + 1`` if
    ``include_embeddings`` else ``n_layers`` (see the module docstring for the layer order):

    - ``gen_mean``: mean over the generated positions (the generative representation is the
      mean of this over layers);
    - ``prompt_mean``: mean over the prompt positions; ``prompt_last``: the last prompt position;
    - ``prefix_means`` (only when ``prefix_lengths`` is given): ``[len(prefix_lengths), L, hidden]``,
      the mean over the first ``t`` generated positions for each ``t`` (``t`` beyond the
      generation means all of it);
    - ``n_gen``: the number of generated tokens (0-d int64).

    Items with no generated tokens raise ``ValueError`` (``on_empty="error"``, default) or get
    NaN ``gen_mean``/``prefix_means`` (``on_empty="nan"``). Hooks on the first decoder layer
    (its input), the decoder layers and the final norm reduce each ``[batch, seq, hidden]``
    activation to these means in float32 as it is produced; nothing else is kept.
    ``padding_side`` only changes how batches are laid out, not the results.

    Many parameters because it is the low-level pass every cached reduction calls: the token ids, the
    reduction's options (embeddings, prefixes, padding, empty generations) and the batch.
    """
    prefix_lengths = _check_inputs(prompt_ids, gen_ids, prefix_lengths, padding_side, on_empty)
    base, layers, norm = decoder_parts(llm.model)
    n_out = len(layers) + int(include_embeddings)
    n_means = len(_FIXED_ROWS) + len(prefix_lengths)
    dev, pad_id = llm.device, int(llm.tokenizer.pad_token_id)
    state: dict[str, Any] = {}

    def reduce_into(idx: int, h: torch.Tensor) -> None:
        # With device_map="auto" the layers live on several devices: reduce where ``h`` is.
        w = state["w"] if state["w"].device == h.device else state["w"].to(h.device)
        state["out"][:, idx] = torch.bmm(w, h.to(torch.float32)).to(state["out"].device)
        state["seen"].add(idx)

    order = sorted(range(len(prompt_ids)), key=lambda i: len(prompt_ids[i]) + len(gen_ids[i]))
    results: list[dict[str, np.ndarray] | None] = [None] * len(order)
    bs = max(1, int(batch_size))
    bar = progress(total=len(order), desc="represent", unit="item", disable=not show_progress)
    with bar, _reduction_hooks(layers, norm, include_embeddings, reduce_into):
        for start in range(0, len(order), bs):
            rows = order[start : start + bs]
            ids, mask, positions, w = _layout(rows, prompt_ids, gen_ids, pad_id, padding_side, prefix_lengths)
            state.update(w=w.to(dev), seen=set())
            state["out"] = torch.zeros((len(rows), n_out, n_means, llm.hidden_size), dtype=torch.float32, device=dev)
            base(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=positions.to(dev), use_cache=False)
            if state["seen"] != set(range(n_out)):
                raise RuntimeError(
                    f"representation hooks saw layers {sorted(state['seen'])}, expected 0..{n_out - 1}; "
                    f"{type(llm.model).__name__} does not run its layers the Llama/Qwen way"
                )
            out = state["out"].cpu().numpy()
            for r, i in enumerate(rows):
                results[i] = _unpack(out[r], len(gen_ids[i]), bool(prefix_lengths))
            bar.update(len(rows))
    state.clear()
    return results  # type: ignore[return-value]


__all__ = ["represent"]
