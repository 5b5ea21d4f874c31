"""Export: Keras -> TFLite conversion, calibration, verification against Keras, the TFLite
metadata MediaPipe reads, and the LiteRT runner."""

from mobilenet_tf import _api

__getattr__, __dir__, __all__ = _api.attach(__name__, {
    name: "converter" for name in (
        "QUANTIZATIONS", "IO_TYPES", "ExportError", "VerificationError", "Verification",
        "LoadedImages", "convert", "verify", "check_agreement", "load_images", "with_metadata",
        "mediapipe_problem", "resolve_io_types", "serving_archive", "model_image_size",
        "to_unit_range", "DEFAULT_MIN_TOP1_AGREEMENT", "DEFAULT_MODEL_VERSION",
        "DEFAULT_NUM_CALIBRATION_IMAGES", "INPUT_NAME", "OUTPUT_NAME", "SIGNATURE_KEY",
        "VERIFY_BATCH_SIZE")
} | {"TFLiteClassifier": "tflite"}, old="export")
