"""Temporal heads over whole videos (segmentation, localization): running a trained model (``model``) and the
``temporal`` stage of ``videoact run`` (``stage``). The networks themselves are in ``heads.segmentation`` and
``heads.localization``."""

from videoact.heads.temporal.model import (
    CHECKPOINT_FORMAT,
    ASRFConfig,
    LACInputConfig,
    SequenceFeatureConfig,
    Standardizer,
    asrf_step_probs,
    detect_instances,
    lac_inputs,
    load_temporal_model,
    predict_video,
    save_temporal_model,
    segmentation_frame_probs,
    steps_to_frames,
    video_features,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "ASRFConfig",
    "LACInputConfig",
    "SequenceFeatureConfig",
    "Standardizer",
    "asrf_step_probs",
    "detect_instances",
    "lac_inputs",
    "load_temporal_model",
    "predict_video",
    "save_temporal_model",
    "segmentation_frame_probs",
    "steps_to_frames",
    "video_features",
]
