"""Figures for nuScenes roots (real or synthetic): LiDAR points projected on the six cameras."""
from __future__ import annotations

import io
import os
import os.path as osp
from typing import Union

import numpy as np

# nuScenes figure order (``NuScenes.render_sample``): front row left to right, then back row
GRID_ORDER = ('CAM_FRONT_LEFT', 'CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_BACK_LEFT', 'CAM_BACK', 'CAM_BACK_RIGHT')


def save_lidar_on_cameras(nusc_root: str, sample: Union[str, int], out_png: str, version: str = 'v1.0-mini',
                          max_depth: float = 50.0, dot_size: float = 1.5, width_px: int = 1800,
                          max_colours: int = 256) -> str:
    """Draw the six camera images of a sample with its LiDAR points coloured by depth (2 x 3 grid).

    Points are projected with the devkit's own ``NuScenesExplorer.map_pointcloud_to_image`` (LiDAR frame -> ego ->
    global -> ego at the camera time -> camera -> image pixels; points closer than 1 m are dropped) and coloured by
    their camera-frame depth (m, ``max_depth`` saturates the colour map).

    Args:
        nusc_root: nuScenes data root. sample: sample token or index into the sample table.
        out_png: output path. version: table folder.
        width_px: figure width in pixels. max_colours: the PNG is palette-quantised to this many colours
            (0: keep RGB) to keep the file small.

    Returns:
        ``out_png``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from nuscenes.nuscenes import NuScenes
    from PIL import Image

    nusc = NuScenes(version=version, dataroot=nusc_root, verbose=False)
    rec = nusc.sample[sample] if isinstance(sample, int) else nusc.get('sample', sample)
    lidar = rec['data']['LIDAR_TOP']
    first = nusc.get('sample_data', rec['data']['CAM_FRONT'])
    aspect = first['height'] / first['width']
    fig_w = width_px / 100
    fig, axes = plt.subplots(2, 3, figsize=(fig_w, fig_w / 3 * aspect * 2 + 0.35), dpi=100)
    for ax, ch in zip(axes.ravel(), GRID_ORDER):
        pts, depth, im = nusc.explorer.map_pointcloud_to_image(lidar, rec['data'][ch])
        ax.imshow(im)
        order = np.argsort(-depth)  # near points drawn last
        ax.scatter(pts[0, order], pts[1, order], c=np.minimum(depth[order], max_depth), s=dot_size, cmap='turbo',
                   vmin=0.0, vmax=max_depth, linewidths=0)
        ax.set_title(ch, fontsize=9, pad=2)
        ax.set_xlim(0, im.size[0])
        ax.set_ylim(im.size[1], 0)
        ax.axis('off')
    scene = nusc.get('scene', rec['scene_token'])
    fig.suptitle(f'{scene["name"]}: LIDAR_TOP points on the cameras, coloured by depth (0-{max_depth:.0f} m)',
                 fontsize=10, y=0.995)
    fig.subplots_adjust(left=0.005, right=0.995, bottom=0.005, top=0.93, wspace=0.01, hspace=0.08)
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=100)
    plt.close(fig)
    img = Image.open(io.BytesIO(buf.getvalue())).convert('RGB')
    if max_colours:
        img = img.quantize(colors=max_colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    os.makedirs(osp.dirname(osp.abspath(out_png)), exist_ok=True)
    img.save(out_png, optimize=True)
    return out_png
