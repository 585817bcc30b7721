"""The project's tests run on machines without a GPU: install the opt-in CPU support (mmcv point-op fallbacks,
spconv's Native algorithm on CPU, gloo without CUDA) once, as tools/train.py does. ``import mmxmodal`` alone
changes nothing upstream (tests/test_plugin/test_import_is_pure.py checks it in a fresh interpreter)."""
import mmxmodal.cpu  # noqa: F401
