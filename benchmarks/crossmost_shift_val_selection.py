"""Cross-MoST protocol v4: choose the target shift on VAL only, by a rule fixed before any number was seen (issue 15).

Why: in protocol v3 the target's image shift (clutter backgrounds, camera roll, harsh lighting) left the zero-shot
image start at ~26 % against ~82 % for the point start, the reverse of the published setting (CLIP's 2D start is
at least as good as the 3D one there). The joint rule then takes ~1 % of its labels from the 2D teacher, so the
method's cross-modal part is never exercised. v4 picks, among the candidate shifts below (listed before running),
the one whose zero-shot starts are the most comparable on the target VAL split:

    rule: minimise |zero_shot_image - zero_shot_point| (val, tuning seed 100); ties -> the earlier candidate.

Only the zero-shot start is evaluated (no self-training), so the choice cannot follow the method's gains. The
source CLIP and the ULIP alignment depend on the source set only: they are trained once per source size and shared
by the candidates with that size. The test split is never read here.

Round 1 varied the target shift with the v3 source set (20 captioned objects per class); every gap stayed above 44
points, so round 2 (added after round 1, same rule) also enlarged the source set (60 and 120 objects per class).
Both rounds are in the results file. Chosen (2026-12-07): ``img_mild_source60`` (tied with ``img_mild_source120``
at 28.3 points; the earlier candidate wins the tie): val zero-shot point 85.0 %, image 56.7 %.

    python benchmarks/crossmost_shift_val_selection.py   # -> benchmarks/results/crossmost_shift_val_selection.json
"""
from __future__ import annotations

import json
import os
import os.path as osp
import shutil
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
OUT = osp.join(ROOT, 'benchmarks/results/crossmost_shift_val_selection.json')
WORK = osp.join(ROOT, 'work_dirs/xm4shift')
SEED = 100
DATA_KWARGS = dict(source_per_class=20, source_views=2, train_per_class=20, val_per_class=10, test_per_class=20,
                   source_style='varied')
START_KWARGS = dict(clip_epochs=30, ulip_epochs=30)
_MEDIUM = dict(background='source', in_plane=0.0, tint=0.1, gamma=[0.8, 1.3], gain=[0.7, 1.0])
_MILD = dict(_MEDIUM, elevation_low=[0.0, 10.0], elevation_high=[40.0, 55.0])
#: round 1, fixed before running: the shift alone ({} is protocol v3's), the v3 source set (20 objects per class)
SHIFTS = {
    'v3': {},
    'img_medium': _MEDIUM,
    'img_medium_pts_noise0.03': dict(_MEDIUM, noise=0.03),
    'img_medium_pts_noise0.05': dict(_MEDIUM, noise=0.05),
    'img_mild': _MILD,
    'img_mild_pts_noise0.03': dict(_MILD, noise=0.03),
}
CANDIDATES = {name: dict(shift=shift, source_per_class=20) for name, shift in SHIFTS.items()}
#: round 2, added after round 1 left every gap above 44 points (image starts 27-36 %, point starts 80-83 %, the
#: point noise did not lower the point start): a larger captioned source set for the small CLIP (a real CLIP saw far
#: more than 480 images), same rule; round 1's rows are kept in the file
for n in (60, 120):
    for name in ('v3', 'img_mild'):
        CANDIDATES[f'{name}_source{n}'] = dict(shift=SHIFTS[name], source_per_class=n)
START_FILES = ('source_clip', 'ulip_dgcnn.pth', 'start_info.json')


def main() -> dict:
    import torch
    from mmengine.config import Config

    from mmxmodal_bench.crossmost_data import generate
    from mmxmodal_bench.crossmost_start import make_start
    from mmxmodal_bench.protocols.crossmost import CONFIG, evaluate, relative_paths, seed_config, start_checkpoint
    torch.set_num_threads(1)
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    classes = list(Config.fromfile(CONFIG).class_names)
    t0 = time.time()
    rows, starts, start_infos = {}, {}, {}
    for name, cand in CANDIDATES.items():
        data_dir = osp.join(WORK, f'seed{SEED}', name)
        kwargs = dict(DATA_KWARGS, source_per_class=cand['source_per_class'])
        generate(data_dir, seed=SEED, classes=classes, shift=cand['shift'], **kwargs)
        first = starts.get(cand['source_per_class'])
        if first is None:
            start_infos[cand['source_per_class']] = make_start(data_dir, seed=SEED, **START_KWARGS)
            starts[cand['source_per_class']] = data_dir
        else:  # the start depends on the source set only (identical for candidates with the same source size)
            for f in START_FILES:
                src, dst = osp.join(first, f), osp.join(data_dir, f)
                if osp.isdir(src):
                    shutil.copytree(src, dst, dirs_exist_ok=True)
                else:
                    shutil.copy2(src, dst)
        cfg = seed_config(CONFIG, data_dir, SEED)
        start = start_checkpoint(cfg, osp.join(data_dir, 'start.pth'))
        z = evaluate(cfg, start, osp.join(data_dir, 'eval_zero_shot_val'), 'val')
        rows[name] = dict(cand, zero_shot_point=z['pts_acc'], zero_shot_image=z['img_acc'],
                          zero_shot_combined=z['combined_acc'], gap=abs(z['img_acc'] - z['pts_acc']))
        print(f'[shift selection] {name}: {rows[name]}', flush=True)
    chosen = min(rows, key=lambda k: (rows[k]['gap'], list(rows).index(k)))
    out = dict(split='val', seed=SEED, test_split_read=False, rule=__doc__.split('rule: ')[1].split('\n')[0],
               data_kwargs=DATA_KWARGS, start_kwargs=START_KWARGS,
               start_info={str(k): relative_paths(v, WORK) for k, v in start_infos.items()}, candidates=rows,
               chosen=chosen, chosen_candidate=CANDIDATES[chosen],
               command='python benchmarks/crossmost_shift_val_selection.py', seconds=round(time.time() - t0, 1))
    os.makedirs(osp.dirname(OUT), exist_ok=True)
    with open(OUT, 'w') as f:
        json.dump(out, f, indent=1)
    print(json.dumps(dict(chosen=chosen, candidates=rows), indent=1))
    return out


if __name__ == '__main__':
    main()
