"""The vision and audio encoders behind one interface (``base``): the embedded ones and
features cached on disk (``embedded``), the paper's DINOv2, CLIP and BEATs (``paper``, ``beats``) and
the audio encoders' spectrograms (``spectrograms``).

``from helpers import encoders`` gives the embedded module's public names (``encoders.embed_manifest``),
as ``from helpers import lm`` does for the language models.
"""

from helpers.encoders.embedded import (
    ENCODERS,
    MODALITIES,
    AiSFXEncoder,
    EfficientNetLite2Encoder,
    Encoder,
    EncoderSpec,
    WhisperBaseEncoder,
    accepted_options,
    embed_cached,
    embed_manifest,
    encoder_from_options,
    encoder_names,
    load_encoder,
    register_encoder,
    whisper_model_dir,
    whisper_source_files,
)

__all__ = [
    "ENCODERS",
    "MODALITIES",
    "AiSFXEncoder",
    "EfficientNetLite2Encoder",
    "Encoder",
    "EncoderSpec",
    "WhisperBaseEncoder",
    "accepted_options",
    "embed_cached",
    "embed_manifest",
    "encoder_from_options",
    "encoder_names",
    "load_encoder",
    "register_encoder",
    "whisper_model_dir",
    "whisper_source_files",
]
