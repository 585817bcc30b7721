"""Step ``figures``: LiDAR points drawn on the six camera images; rendered objects next to their point clouds."""
from __future__ import annotations

import os.path as osp
import warnings
from typing import TYPE_CHECKING

from mmxmodal_bench.synthetic.visualize import save_object_grid
from mmxmodal_bench.synthetic.visualize_scene import save_lidar_on_cameras

if TYPE_CHECKING:
    from ..demo import Demo


def run(demo: Demo) -> bool:
    reused = True
    out = demo.fig('lidar_on_cameras.png')
    if not (demo.reuse_ok('figures') and osp.isfile(out)):
        with warnings.catch_warnings():  # the devkit's import-time deprecation warnings
            warnings.simplefilter('ignore')
            save_lidar_on_cameras(demo.root('nuscenes'), 0, out, dot_size=2.0)
        reused = False
    demo.add_figure('figures', 'LiDAR points (coloured by depth) projected on the six cameras of a generated '
                    'nuScenes-format sample: the pairs SimIPU learns from', out)
    out2 = demo.fig('objects.png')
    if not (demo.reuse_ok('figures') and osp.isfile(out2)):
        save_object_grid(demo.root('objects'), out2)
        reused = False
    demo.add_figure('figures', 'Generated objects, one per class: a rendered view next to the point cloud (the '
                    'pairs CrossPoint learns from)', out2)
    return reused
