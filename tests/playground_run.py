"""A tiny finished run on disk (what notebooks 01-04 leave behind), for the playground tests.

``make_run(outputs, model_dir)`` writes generated PNG images and WAV tones, a manifest, the
SEE/HEAR/NONE generations and representations of the tiny random LLM at ``model_dir`` (so
the playground re-evaluating those cues hits the cache), and random encoder features
(vision for every item, audio for the items with a sound). The cache is whatever
``PERCEIVE_CACHE`` points to.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from helpers.analyses.pipeline import cue_representations
from helpers.data import prompts
from helpers.data.artifacts import RunPaths, save_arrays, save_table
from helpers.lm import Decoding

WORDS = ["red", "apple", "cat", "dog", "sound", "world", "hello", "look", "see", "imagine"]
MAX_NEW_TOKENS = 6


def make_run(
    outputs: Path, model_dir: Path, n_items: int = 14, n_audio: int = 10, name: str = "play", seed: int = 0
) -> RunPaths:
    import soundfile as sf
    from PIL import Image

    from helpers import lm as L

    rng = np.random.default_rng(seed)
    run = RunPaths.of(name, outputs)
    media = Path(outputs) / "media"
    media.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_items):
        item = f"toy/{i:02d}"
        img = media / f"{i:02d}.png"
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(img)
        audio = None
        if i < n_audio:
            audio = media / f"{i:02d}.wav"
            t = np.arange(8000) / 16000
            sf.write(audio, 0.3 * np.sin(2 * np.pi * (200 + 40 * i) * t).astype(np.float32), 16000)
        caption = f"w{i} a {WORDS[i % len(WORDS)]} {WORDS[(3 * i + 1) % len(WORDS)]}"
        rows.append(
            {
                "id": item,
                "caption": caption,
                "caption_raw": caption,
                "image_path": str(img),
                "audio_path": str(audio) if audio else None,
                "source": "toy",
                "category": "toy",
            }
        )
    manifest = pd.DataFrame(rows)
    save_table(manifest, run.manifest)

    model = L.load_llm(str(model_dir))
    table = prompts.build_prompts(manifest, prompts.DEFAULT_CUES)
    ids = list(manifest["id"])
    arrays, gens = {}, []
    for cue, sub in table.groupby("cue", sort=False):
        res = cue_representations(
            model, list(sub["id"]), list(sub["user_text"]), Decoding(max_new_tokens=MAX_NEW_TOKENS)
        )
        gens.append(sub.reset_index(drop=True).join(res.table[["prompt", "text", "n_gen_tokens"]]))
        for kind in ("gen_mean", "prompt_last", "prompt_mean"):
            arrays[f"{cue}/{kind}"] = res.per_layer[kind]
    generations = pd.concat(gens, ignore_index=True)
    generations["llm"] = str(model_dir)
    generations["max_new_tokens"] = MAX_NEW_TOKENS
    save_table(generations, run.generations)
    save_arrays(run.representations, ids, arrays)
    save_arrays(run.features("toyvision"), ids, {"features": rng.normal(size=(n_items, 8)).astype(np.float32)})
    save_arrays(run.features("toyaudio"), ids[:n_audio], {"features": rng.normal(size=(n_audio, 6)).astype(np.float32)})
    return run
