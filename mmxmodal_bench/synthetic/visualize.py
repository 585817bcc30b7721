"""Figures of the synthetic objects: rendered views next to their point clouds."""
import os
import os.path as osp
from typing import Optional, Sequence

import numpy as np

from mmxmodal.datasets.shapenet_render import SHAPENET_SYNSETS

from .objects import Camera


def _read_ply_xyz(path: str) -> np.ndarray:
    from mmxmodal.datasets.transforms.loading import load_points_file
    return load_points_file(path)[:, :3]


def save_object_grid(root: str, out_png: str, num_objects: int = 12, view: int = 0, ncols: int = 4,
                     synsets: Optional[Sequence[str]] = None, dpi: int = 80) -> str:
    """Write a grid of (render, point cloud) pairs for objects of a ShapeNetRender-layout root.

    Takes the first object (sorted id) of each synset, then the second of each, ... until ``num_objects``. The
    point cloud (matplotlib 3D scatter, coloured by height y) is seen from the render's viewpoint when
    ``rendering_metadata.txt`` is present.

    Args:
        root: folder holding ``ShapeNet/`` and ``ShapeNetRendering/``.
        out_png: output PNG path (folders created).
        view: index of the view shown.
    Returns:
        ``out_png``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from mmxmodal.datasets.transforms.loading import load_rgb_image

    pts_root, img_root = osp.join(root, 'ShapeNet'), osp.join(root, 'ShapeNetRendering')
    synsets = sorted(synsets or os.listdir(pts_root))
    per_syn = {s: sorted(f for f in os.listdir(osp.join(pts_root, s)) if f.endswith('.ply')) for s in synsets}
    chosen, k = [], 0
    while len(chosen) < num_objects and any(k < len(v) for v in per_syn.values()):
        chosen += [(s, v[k]) for s, v in per_syn.items() if k < len(v)]
        k += 1
    chosen = chosen[:num_objects]
    if not chosen:
        raise FileNotFoundError(f'no .ply objects under {pts_root}')
    nrows = (len(chosen) + ncols - 1) // ncols
    fig = plt.figure(figsize=(4.0 * ncols, 2.2 * nrows), dpi=dpi)
    for i, (syn, fname) in enumerate(chosen):
        obj = fname[:-4]
        folder = osp.join(img_root, syn, obj, 'rendering')
        img = load_rgb_image(osp.join(folder, f'{view:02d}.png'))
        ax = fig.add_subplot(nrows, 2 * ncols, 2 * i + 1)
        ax.imshow(img)
        ax.set_title(f'{SHAPENET_SYNSETS.get(syn, syn)} ({syn})', fontsize=8)
        ax.axis('off')
        pts = _read_ply_xyz(osp.join(pts_root, syn, fname))
        ax3 = fig.add_subplot(nrows, 2 * ncols, 2 * i + 2, projection='3d')
        # object frame (x, y up, z) -> matplotlib (x, -z, y): a rotation, so the view is not mirrored
        ax3.scatter(pts[:, 0], -pts[:, 2], pts[:, 1], c=pts[:, 1], cmap='viridis', s=1.5, linewidths=0)
        meta = osp.join(folder, 'rendering_metadata.txt')
        if osp.isfile(meta):
            with open(meta) as f:
                lines = [ln for ln in f if ln.strip()]
            cam = Camera.from_metadata_line(lines[view], img.shape[1], img.shape[0])
            ax3.view_init(elev=cam.elevation, azim=cam.azimuth - 90)
        ax3.set_xlim(-1, 1)
        ax3.set_ylim(-1, 1)
        ax3.set_zlim(-1, 1)
        ax3.set_box_aspect((1, 1, 1), zoom=1.35)
        ax3.set_axis_off()
        ax3.set_title(f'{len(pts)} points', fontsize=8)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.93, bottom=0.01, wspace=0.02, hspace=0.15)
    os.makedirs(osp.dirname(osp.abspath(out_png)), exist_ok=True)
    fig.savefig(out_png, dpi=dpi, metadata={'Software': None})
    plt.close(fig)
    return out_png
