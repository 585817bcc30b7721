"""spconv on the CPU: choose ``ConvAlgo.Native`` for CPU tensors, keep spconv's default algorithm on CUDA.

spconv 2.x picks ``ConvAlgo.MaskImplicitGemm`` at construction for small kernels; that algorithm calls CUDA
(streams, synchronisation) even for CPU tensors and fails there. The weight layout is the same for every
algorithm in spconv >= 2.2 (``ALL_WEIGHT_IS_KRSC``), so the algorithm can be chosen per call: this module wraps
``SparseConvolution.forward`` so that a layer whose input features are on the CPU runs with ``Native`` and a layer
on CUDA keeps the algorithm it was built with. Layers that share an ``indice_key`` all run on the same device, so
they agree on the algorithm, as spconv requires. Stock mmdet3d configs (``SparseEncoder`` of SECOND/CenterPoint)
need no edit. ``import mmxmodal`` applies the patch.
"""
import functools
import warnings


def patch_spconv_cpu_algo() -> bool:
    """Install the per-device algorithm choice. Idempotent; returns False when spconv 2.x is not installed."""
    try:
        with warnings.catch_warnings():  # spconv 2.3.6 uses torch.cuda.amp decorators deprecated in torch 2.4
            warnings.simplefilter('ignore', FutureWarning)
            import spconv.pytorch  # noqa: F401
        from spconv.core import ConvAlgo
        from spconv.pytorch.conv import SparseConvolution
    except ImportError:
        return False
    if getattr(SparseConvolution.forward, '_mmxmodal_cpu', False):
        return True
    cuda_forward = SparseConvolution.forward

    @functools.wraps(cuda_forward)
    def forward(self, input, *args, **kwargs):
        if input.features.is_cuda or self.algo == ConvAlgo.Native:
            return cuda_forward(self, input, *args, **kwargs)
        chosen = self.algo
        self.algo = ConvAlgo.Native
        try:
            return cuda_forward(self, input, *args, **kwargs)
        finally:
            self.algo = chosen

    forward._mmxmodal_cpu = True
    SparseConvolution.forward = forward
    return True


SPCONV_PATCHED = patch_spconv_cpu_algo()
