"""encoders (registered in mmdet3d.registry.MODELS)."""
# one import line per module
from .clip_vit import CLIPViTEncoder  # noqa: F401
from .point_transformer import PointTransformerEncoder, group_points  # noqa: F401
from .dgcnn import DGCNNEncoder, knn_indices  # noqa: F401
from .pointnet import PointNetEncoder  # noqa: F401
from .voxel_point_features import gather_sparse_point_features, sparse_encoder_forward  # noqa: F401
from .seg_vfe import SegVFEAnyDevice, dynamic_scatter  # noqa: F401
