"""mmdet3d's ``SemanticKittiDataset`` with the project's raise-or-skip handling of bad samples."""
from mmdet3d.datasets import SemanticKittiDataset
from mmdet3d.registry import DATASETS

from .robust import RobustDatasetMixin


@DATASETS.register_module()
class RobustSemanticKittiDataset(RobustDatasetMixin, SemanticKittiDataset):
    """``SemanticKittiDataset`` (same arguments, infos and pipelines) whose samples fail with a message naming the
    files (``on_error='raise'``, default and always in ``test_mode``) or are skipped with a warning and counted
    (``on_error='skip'``), see :mod:`mmxmodal.datasets.robust`.

    Add ``dict(type='CheckPointSegMask', raw_ids=list(labels_map))`` after ``LoadAnnotations3D`` in the pipeline so
    that a ``.label`` of the wrong length or with unknown raw ids is caught (mmdet3d's loaders accept both).
    """

    def __init__(self, *args, on_error: str = 'raise', **kwargs) -> None:
        self._init_robust(on_error)
        self.test_mode = kwargs.get('test_mode', False)
        super().__init__(*args, **kwargs)

    def get_data_info(self, idx: int) -> dict:
        """mmdet3d's data info plus a top-level ``lidar_path`` (so that error messages name the scan)."""
        info = super().get_data_info(idx)
        if 'lidar_path' not in info and isinstance(info.get('lidar_points'), dict):
            info['lidar_path'] = info['lidar_points'].get('lidar_path')
        return info
