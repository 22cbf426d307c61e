"""Reading the images and sounds that encoders embed, with errors that name the file.

``load_image`` returns an RGB :class:`PIL.Image.Image`; ``load_audio`` returns a float32
mono waveform at the requested sample rate. Both raise ``FileNotFoundError`` for a
missing file and ``ValueError`` for a file that exists but cannot be decoded (or holds
no audio), always naming the path, so a bad item in a dataset of thousands is easy to
find.

Choices that change the numbers (they are part of the encoders' cache fingerprints):

* **Transparency** is composited onto white, not dropped: a transparent PNG drawing
  (the Tux Paint stamps, logos) then looks like it does in a viewer. Dropping alpha
  would expose whatever colour the invisible pixels happen to store, often black.
* **EXIF orientation** is applied, so photos are upright as a viewer shows them.
* **Stereo/multichannel audio** is mixed down by averaging the channels (what Essentia's
  ``MonoLoader(downmix="mix")``, librosa and Whisper's ffmpeg call do).
* **Resampling** uses soxr "HQ" (librosa's default) unless a caller asks for another
  librosa ``res_type`` (the aiSFX encoder asks for libsamplerate's ``"sinc_medium"``, the
  converter Essentia used for its training data); any input rate is accepted.
* **Long clips are cropped to their first** ``max_seconds``. The first seconds are where a
  sound-effect recording usually puts its event, cropping the head is deterministic (no
  random offset to record), and only the head of a long MP3 needs to be decoded. The
  crop is exact in output samples: ``round(max_seconds * target_sr)``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

AUDIO_RESAMPLER = "soxr_hq"

_HINT_MISSING = "check the path, or that the dataset was downloaded and extracted where the manifest points"


def _as_path(path: str | Path) -> Path:
    return Path(path).expanduser()


def load_image(path: str | Path):
    """Open ``path`` as an RGB :class:`PIL.Image.Image` (alpha composited onto white).

    Raises ``FileNotFoundError`` when the file does not exist and ``ValueError`` when it
    exists but is not a readable image.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = _as_path(path)
    if not p.is_file():
        what = "is a directory, not an image file" if p.is_dir() else "does not exist"
        raise FileNotFoundError(f"Image file {str(p)!r} {what}: {_HINT_MISSING}.")
    try:
        with Image.open(p) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            return _to_rgb_on_white(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"Cannot read image {str(p)!r}: {type(e).__name__}: {e}") from e


def _to_rgb_on_white(im):
    """Return an RGB copy of ``im``; transparent/partly transparent pixels are blended onto white."""
    from PIL import Image

    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        im.mode in ("P", "L", "RGB") and "transparency" in im.info
    )
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # 16/32-bit greyscale: scale to 8 bits by the type's range instead of clipping.
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        if im.mode == "F":
            top = 1.0 if arr.max() <= 1.0 else 255.0
        im = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    if has_alpha:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def _read_soundfile(p: Path, max_seconds: float | None) -> tuple[np.ndarray, int]:
    import soundfile as sf

    with sf.SoundFile(str(p)) as f:
        sr = int(f.samplerate)
        frames = -1
        if max_seconds is not None:
            # 0.1 s of margin so the exact crop after resampling is not at the filter's edge
            frames = int(math.ceil(max_seconds * sr)) + max(64, sr // 10)
        data = f.read(frames=frames, dtype="float32", always_2d=True)
    return data, sr


def _read_librosa(p: Path, max_seconds: float | None) -> tuple[np.ndarray, int]:
    import librosa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y, sr = librosa.load(str(p), sr=None, mono=False, duration=None if max_seconds is None else max_seconds + 0.01)
    y = np.asarray(y, dtype=np.float32)
    data = y[:, None] if y.ndim == 1 else y.T
    return data, int(sr)


def read_audio(path: str | Path, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Decode ``path`` as a float32 mono waveform at its own sample rate: ``(samples, rate)``.

    The decoding half of :func:`load_audio` (soundfile, then librosa/audioread for what
    soundfile cannot open; channels averaged), with the same errors.
    """
    p = _as_path(path)
    if not p.is_file():
        what = "is a directory, not an audio file" if p.is_dir() else "does not exist"
        raise FileNotFoundError(f"Audio file {str(p)!r} {what}: {_HINT_MISSING}.")
    if p.stat().st_size == 0:
        raise ValueError(f"Audio file {str(p)!r} is empty (0 bytes); re-download or remove it.")

    try:
        data, sr = _read_soundfile(p, max_seconds)
    except Exception as e_sf:  # soundfile.LibsndfileError, RuntimeError, TypeError for odd formats
        try:
            data, sr = _read_librosa(p, max_seconds)
        except Exception as e_lr:
            raise ValueError(
                f"Cannot read audio {str(p)!r}: soundfile said {type(e_sf).__name__}: {e_sf}; "
                f"librosa fallback said {type(e_lr).__name__}: {e_lr}"
            ) from e_lr

    if data.size == 0 or data.shape[0] == 0:
        raise ValueError(f"Audio file {str(p)!r} contains no samples (empty audio); re-download or remove it.")
    y = data.mean(axis=1, dtype=np.float64).astype(np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(y).all():
        raise ValueError(f"Audio file {str(p)!r} contains NaN or infinite samples.")

    return y, sr


def audio_problem(path: str | Path) -> str | None:
    """None when :func:`load_audio` can decode the whole file, else what is wrong with it.

    Data prep calls this so that a file the encoders could not read is caught (or counted
    as skipped) before any model runs, with the same decoders the encoders use.
    """
    return _checked(path, read_audio)


def image_problem(path: str | Path) -> str | None:
    """None when :func:`load_image` decodes the whole image, else what is wrong (a truncated
    JPEG/PNG, a zero-byte file, a file that is no image)."""
    return _checked(path, load_image)


#: (loader, path, size, mtime) -> problem; a manifest builder and validate_manifest check the same files
_CHECKED: dict[tuple[str, str, int, int], str | None] = {}


def _checked(path: str | Path, loader) -> str | None:
    """``loader(path)``'s error text or None, decoded once per file version within the process."""
    p = _as_path(path)
    try:
        st = p.stat()
        key = (loader.__name__, str(p.resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        key = None
    if key is not None and key in _CHECKED:
        return _CHECKED[key]
    try:
        loader(p)
        problem = None
    except (FileNotFoundError, ValueError) as exc:
        problem = str(exc)
    if key is not None:
        _CHECKED[key] = problem
    return problem


def load_audio(
    path: str | Path, target_sr: int, max_seconds: float | None = None, *, resampler: str = AUDIO_RESAMPLER
) -> np.ndarray:
    """Read an audio file as a float32 mono waveform at ``target_sr`` Hz.

    WAV/FLAC/OGG/MP3 are read with soundfile (libsndfile >= 1.1 decodes MP3); anything
    soundfile cannot open is retried with librosa/audioread. Channels are averaged, the
    signal is resampled to ``target_sr`` (any input rate is accepted) and, when
    ``max_seconds`` is given, cropped to its first ``max_seconds`` seconds. ``resampler``
    is a librosa ``res_type`` ("soxr_hq" default; "sinc_medium" needs ``samplerate``).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for an unreadable
    file, an empty one (0 samples) or one holding non-finite samples.
    """
    if target_sr <= 0:
        raise ValueError(f"target_sr must be positive, got {target_sr}")
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"max_seconds must be positive or None, got {max_seconds}")
    y, sr = read_audio(path, max_seconds)
    if sr != target_sr:
        import librosa

        y = librosa.resample(y, orig_sr=sr, target_sr=target_sr, res_type=resampler)
    if max_seconds is not None:
        y = y[: int(round(max_seconds * target_sr))]
    if y.shape[0] == 0:
        raise ValueError(f"Audio file {str(path)!r} is shorter than one sample at {target_sr} Hz.")
    return np.ascontiguousarray(y, dtype=np.float32)
