"""ShapeNetRender (CrossPoint's pretraining data): ShapeNet point clouds paired with ShapeNetRendering views.

Layout (real data as CrossPoint uses it, or ``tools/create_synthetic_data.py objects``)::

    <data_root>/ShapeNet/<synset>/<object_id>.ply                      # or .npy / .txt
    <data_root>/ShapeNetRendering/<synset>/<object_id>/rendering/NN.png  # + renderings.txt (optional)
"""
import logging
import os
import os.path as osp
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Union

from mmdet3d.registry import DATASETS, TRANSFORMS
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from .robust import RobustDatasetMixin

#: ShapeNetCore v1/v2 synset id -> name (all 55 categories), used to name real ShapeNet folders.
SHAPENET_SYNSETS: Dict[str, str] = {
    '02691156': 'airplane', '02747177': 'trash_bin', '02773838': 'bag', '02801938': 'basket',
    '02808440': 'bathtub', '02818832': 'bed', '02828884': 'bench', '02843684': 'birdhouse',
    '02871439': 'bookshelf', '02876657': 'bottle', '02880940': 'bowl', '02924116': 'bus',
    '02933112': 'cabinet', '02942699': 'camera', '02946921': 'can', '02954340': 'cap', '02958343': 'car',
    '02992529': 'cellphone', '03001627': 'chair', '03046257': 'clock', '03085013': 'keyboard',
    '03207941': 'dishwasher', '03211117': 'display', '03261776': 'earphone', '03325088': 'faucet',
    '03337140': 'file_cabinet', '03467517': 'guitar', '03513137': 'helmet', '03593526': 'jar',
    '03624134': 'knife', '03636649': 'lamp', '03642806': 'laptop', '03691459': 'loudspeaker',
    '03710193': 'mailbox', '03759954': 'microphone', '03761084': 'microwave', '03790512': 'motorbike',
    '03797390': 'mug', '03928116': 'piano', '03938244': 'pillow', '03948459': 'pistol', '03991062': 'pot',
    '04004475': 'printer', '04074963': 'remote', '04090263': 'rifle', '04099429': 'rocket',
    '04225987': 'skateboard', '04256520': 'sofa', '04330267': 'stove', '04379243': 'table',
    '04401088': 'telephone', '04460130': 'tower', '04468005': 'train', '04530566': 'watercraft',
    '04554684': 'washer',
}

#: image file extensions of rendered views
IMG_EXTS = ('.png', '.jpg', '.jpeg')


def build_pipeline(pipeline: Sequence[Union[dict, Callable]]) -> List[Callable]:
    """Build dict transforms with the mmdet3d registry (works without a default scope)."""
    return [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in (pipeline or [])]


@DATASETS.register_module()
class ShapeNetRenderDataset(RobustDatasetMixin, BaseDataset):
    """One sample per point-cloud file whose rendering folder exists.

    data_info: ``sample_idx`` (int), ``pts_path`` (str), ``img_paths`` (list[str], sorted views), ``gt_label``
    (int; -1 unless ``use_synset_label``), ``synset`` (str, 8 digits), ``object_id`` (str).
    ``metainfo['classes']``: names of the synsets found (ShapeNetCore names; the id itself when unknown),
    ``metainfo['synsets']``: the synset ids in the same (sorted) order.

    Args:
        data_root: root holding ``pts_dir`` and ``img_dir``.
        pts_dir / img_dir: sub-folders of the point clouds and of the renderings.
        synsets: restrict to these synset ids (default: every folder in ``pts_dir``).
        pts_exts: point-cloud file extensions to list.
        skip_missing: skip (with a warning) objects whose rendering folder is missing, empty, or lists missing
            files in ``renderings.txt``; False raises an error naming the path; None (default) follows
            ``on_error``.
        on_error: ``'raise'`` (default) or ``'skip'`` a sample whose files cannot be loaded (warning + counter,
            see :mod:`mmxmodal.datasets.robust`); the pretraining configs use ``'skip'``.
        use_synset_label: set ``gt_label`` to the synset's index in ``metainfo['classes']``.
    """
    METAINFO = dict(classes=(), synsets=())

    def __init__(self, data_root: str, pipeline: Sequence[Union[dict, Callable]] = (), pts_dir: str = 'ShapeNet',
                 img_dir: str = 'ShapeNetRendering', synsets: Optional[Sequence[str]] = None,
                 pts_exts: Sequence[str] = ('.ply', '.npy', '.txt'), skip_missing: Optional[bool] = None,
                 use_synset_label: bool = False, metainfo: Optional[dict] = None, test_mode: bool = False,
                 lazy_init: bool = False, on_error: str = 'raise', **kwargs) -> None:
        self._init_robust(on_error)
        if not data_root or not osp.isdir(data_root):
            raise FileNotFoundError(f'ShapeNetRender data_root not found: {data_root}')
        self.pts_root = osp.join(data_root, pts_dir)
        self.img_root = osp.join(data_root, img_dir)
        for d in (self.pts_root, self.img_root):
            if not osp.isdir(d):
                raise FileNotFoundError(f'ShapeNetRender folder not found: {d}')
        found = sorted(s for s in os.listdir(self.pts_root) if osp.isdir(osp.join(self.pts_root, s)))
        if synsets is not None:
            missing = [s for s in synsets if s not in found]
            if missing:
                raise FileNotFoundError(f'synset folders not found in {self.pts_root}: {missing}')
            found = sorted(synsets)
        if not found:
            raise FileNotFoundError(f'no synset folders in {self.pts_root}')
        self.synsets = found
        self.pts_exts = tuple(e.lower() for e in pts_exts)
        self.skip_missing = (on_error == 'skip' and not test_mode) if skip_missing is None else skip_missing
        self.use_synset_label = use_synset_label
        meta = dict(classes=tuple(SHAPENET_SYNSETS.get(s, s) for s in found), synsets=tuple(found))
        meta.update(metainfo or {})
        super().__init__(data_root=data_root, metainfo=meta, pipeline=build_pipeline(pipeline),
                         test_mode=test_mode, lazy_init=lazy_init, **kwargs)

    def _views(self, synset: str, obj: str) -> Optional[List[str]]:
        """Sorted view paths of an object, or None (after a warning) when missing and ``skip_missing``."""
        folder = osp.join(self.img_root, synset, obj, 'rendering')
        problem = None
        if not osp.isdir(folder):
            problem = f'rendering folder not found: {folder}'
        else:
            present = set(os.listdir(folder))
            listing = osp.join(folder, 'renderings.txt')
            if 'renderings.txt' in present:
                with open(listing) as f:
                    names = [ln.strip() for ln in f if ln.strip()]
                absent = [n for n in names if n not in present]
                if absent:
                    problem = f'{listing} lists missing files: {absent[:5]}'
            else:
                names = sorted(n for n in present if n.lower().endswith(IMG_EXTS))
            if problem is None and not names:
                problem = f'no rendered images in {folder}'
        if problem is not None:
            if self.skip_missing:
                warnings.warn(f'ShapeNetRenderDataset: skipping {synset}/{obj}: {problem}')
                print_log(f'ShapeNetRenderDataset: skipping {synset}/{obj}: {problem}', logger='current',
                          level=logging.WARNING)
                self.num_skipped_infos += 1
                return None
            raise FileNotFoundError(problem)
        return [osp.join(folder, n) for n in names]

    def load_data_list(self) -> List[dict]:
        data_list = []
        for label, synset in enumerate(self.synsets):
            folder = osp.join(self.pts_root, synset)
            files = sorted(f for f in os.listdir(folder) if osp.splitext(f)[1].lower() in self.pts_exts)
            for fname in files:
                obj = osp.splitext(fname)[0]
                views = self._views(synset, obj)
                if views is None:
                    continue
                data_list.append(dict(sample_idx=len(data_list), pts_path=osp.join(folder, fname),
                                      img_paths=views, gt_label=label if self.use_synset_label else -1,
                                      synset=synset, object_id=obj))
        if not data_list:
            raise FileNotFoundError(f'no point clouds with renderings under {self.pts_root} '
                                    f'(extensions {self.pts_exts})')
        return data_list
