"""The export stage: SavedModel for serving, TFLite for phones, each checked against Keras first.

    formats.py      the names of what is written (TFLite variants, labels file; no TensorFlow)
    signatures.py   the serving contract: signature names, input specs, the named outputs
    saved_model.py  the SavedModel for TF Serving, with its warmup records
    tflite.py       the float, dynamic and int8 conversions, LiteRT inference and latency
    bundle.py       the image-classifier bundles for MediaPipe Tasks: RGB in, probabilities out
    metadata.py     the bundles' TFLite metadata and labels, written with the schema's classes
                    (vendored in kmnist.third_party.tflite_metadata)
    mediapipe_check.py  a bundle through MediaPipe's metadata reader and ImageClassifier (the
                    `mobile` extra; imported only when mediapipe is installed)
    checks.py       how close an export must come to Keras, and the check
    report.py       tflite_report.json / .md
    record.py       what an export is (model, kmnist version, flags), written inside it
    exporter.py     `export_and_verify`: write every export, check it, keep what passed

Layout under the export base (TF Serving watches `saved_model/`):
    <export_dir>/saved_model/<version>/   SavedModel
    <export_dir>/tflite/<version>/        kmnist_<variant>.tflite (raw tensors: float, dynamic,
                                          int8; bundles: float_classifier, int8_classifier),
                                          labels.txt, tflite_report.*, kmnist.json
"""
