"""Deployable files of a (pruned) network and running them: the model file, ONNX with dynamic frames/height/width
(fp32, or int8 with an accuracy guard), the HDF5 report, and an onnxruntime stepper for streaming.

Exporting has nothing to do with sparsity, so it lives here and not in ``core.ssl``.
"""
from .check import ExportCheck
from .export import EXPORT_FORMATS, example_input, export_as, export_model_file, write_report_h5

__all__ = ["EXPORT_FORMATS", "ExportCheck", "example_input", "export_as", "export_model_file", "write_report_h5"]
