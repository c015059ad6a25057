"""The TFLite metadata schema's Python classes, vendored unchanged (README.md here says from where).

    metadata_schema_py_generated.py  flatc --python --gen-object-api output for metadata_schema.fbs

kmnist.export.metadata writes the image-classifier bundles' metadata with them and `flatbuffers`,
so writing a bundle needs neither MediaPipe nor tflite-support.
"""
