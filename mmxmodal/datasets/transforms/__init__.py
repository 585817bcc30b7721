"""Data transforms (registered in ``mmdet3d.registry.TRANSFORMS``)."""
# one import line per transform module
from .point_views import ObjectPointAugment, ObjectPointViews, invert_view  # noqa: F401
from .image_views import RandomColorJitter  # noqa: F401
from .object_formatting import PackObjectInputs  # noqa: F401
from .image_resized_crop import RandomResizedCropFlip  # noqa: F401
from .point_crop import RandomPointCrop  # noqa: F401
from .rand_augment import ObjectRandAugment  # noqa: F401
from .weak_strong_views import WeakStrongViews  # noqa: F401
from .loading import LoadObjectPoints, LoadRenderedImage  # noqa: F401
from .scene_views import GlobalTwoViews, global_view_matrix  # noqa: F401
from .multiview_image_aug import MultiViewImageAug, image_aug_matrix  # noqa: F401
from .projection import ProjectPointsToCameras, project_points  # noqa: F401
from .pack_paired_scene import PackPairedSceneInputs  # noqa: F401
from .validate import ValidateImages, ValidatePoints  # noqa: F401
from .seg_checks import CheckPointSegMask  # noqa: F401
from .superpixels import LoadSuperpixels, slic_superpixels  # noqa: F401
