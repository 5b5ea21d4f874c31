"""Export: Keras -> TFLite, one module per step: the settings and their rules (``options``),
conversion to bytes (``converter``), the images that calibrate and verify (``images``), the
metadata MediaPipe reads (``classifier_metadata`` over the flatbuffer ``metadata``),
verification against Keras (``verification``), the whole sequence with its file writes
(``pipeline.export_model``), the LiteRT runner (``tflite``), latency measured side by side
(``latency``), and the α / ρ trade-off over a grid of exports (``tradeoff`` over
``tradeoff_table``, ``tradeoff_files`` and ``tradeoff_chart``)."""

from mobilenet_tf import _api

_API = {
    "options": ("QUANTIZATIONS", "IO_TYPES", "DEFAULT_MIN_TOP1_AGREEMENT",
                "DEFAULT_NUM_CALIBRATION_IMAGES", "DEFAULT_MODEL_VERSION", "ExportError",
                "VerificationError", "ExportOptions", "resolve_io_types"),
    "converter": ("convert", "serving_archive", "model_image_size", "to_unit_range", "INPUT_NAME",
                  "OUTPUT_NAME", "SIGNATURE_KEY"),
    "images": ("LoadedImages", "load_images"),
    "classifier_metadata": ("with_metadata", "mediapipe_problem"),
    "verification": ("Verification", "verify", "check_agreement", "VERIFY_BATCH_SIZE"),
    "pipeline": ("export_model", "ExportResult", "FromWeights"),
    "tflite": ("TFLiteClassifier",),
    "latency": ("interleaved_latency",),
    "tradeoff": ("run_tradeoff", "TradeoffResult"),
    "tradeoff_table": ("TradeoffTable", "Configuration", "choose"),
}

__getattr__, __dir__, __all__ = _api.attach(
    __name__, {name: module for module, names in _API.items() for name in names}, old="export")
