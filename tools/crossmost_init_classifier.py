"""Start classifier of Cross-MoST from a few labelled shots (class-mean prototypes) or CLIP text embeddings.

    python tools/crossmost_init_classifier.py CONFIG CHECKPOINT --out START.pth [--shots 1] [--shot-seed 0]
        [--cfg-options k=v ...]

The model of CONFIG with the weights of CHECKPOINT (e.g. a label-free warm-up, a CrossPoint
checkpoint loaded through the config's ``init_cfg``, or nothing) embeds ``--shots`` labelled samples per class of
the *train* split (drawn with ``numpy.random.default_rng(shot_seed)``; test pipeline: first view, no augmentation);
both modalities' unit embeddings of a class are averaged into its prototype
(:func:`mmxmodal.models.heads.class_mean_prototypes`). (With a pretrained CLIP, the text start is made at model
build time instead: ``model.classifier_init='text'``.) The written checkpoint
is CHECKPOINT's ``state_dict`` with ``classifier.weight`` replaced (training state dropped) and
``meta['crossmost_start']`` describing how it was made; train with ``load_from=START.pth``.
"""
import argparse
import os.path as osp
import sys
from typing import Dict, Optional

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from torch.utils.data import DataLoader, Subset  # noqa: E402


def build_model(cfg: Config, checkpoint: Optional[str]):
    """Model of ``cfg`` in eval mode with ``checkpoint['state_dict']`` loaded (if given)."""
    import mmxmodal  # noqa: F401
    from mmdet3d.registry import MODELS
    init_default_scope('mmdet3d')
    model = MODELS.build(cfg.model)
    model.init_weights()
    if checkpoint:
        ckpt = torch.load(checkpoint, map_location='cpu', weights_only=False)
        missing, unexpected = model.load_state_dict(ckpt.get('state_dict', ckpt), strict=False)
        if unexpected or [k for k in missing if not k.startswith(('mim_', 'mpm_'))]:
            print(f'[init_classifier] missing {missing}, unexpected {unexpected}')
    return model.eval()


@torch.no_grad()
def shot_prototypes(cfg: Config, model, shots: int = 1, shot_seed: int = 0) -> Dict:
    """-> dict(prototypes (C, D), labels and dataset indices of the shots)."""
    from mmdet3d.registry import DATASETS
    from mmxmodal.models.heads import class_mean_prototypes
    ds_cfg = cfg.test_dataloader.dataset.copy()
    ds_cfg.update(split='train', test_mode=True)
    dataset = DATASETS.build(ds_cfg)
    labels_all = np.array([dataset.get_data_info(i)['gt_label'] for i in range(len(dataset))])
    rng = np.random.default_rng(shot_seed)
    idx = sorted(int(i) for c in np.unique(labels_all)
                 for i in rng.choice(np.nonzero(labels_all == c)[0], shots, replace=False))
    loader = DataLoader(Subset(dataset, idx), batch_size=64, shuffle=False, collate_fn=pseudo_collate)
    embs, labels = [], []
    for data in loader:
        data = model.data_preprocessor(data, False)
        e = model.extract_feat(data['inputs'])
        y = torch.stack([s.gt_label for s in data['data_samples']]).view(-1)
        embs += [e['img'], e['pts']]
        labels += [y, y]
    protos = class_mean_prototypes(torch.cat(embs), torch.cat(labels), model.classifier.num_classes)
    return dict(prototypes=protos, labels=torch.cat(labels[::2]).tolist(), indices=idx)


def make_start_checkpoint(cfg: Config, checkpoint: Optional[str], out: str, shots: int = 1, shot_seed: int = 0,
                          source: str = 'prototypes') -> Dict:
    """Write the start checkpoint; returns its ``meta['crossmost_start']``."""
    model = build_model(cfg, checkpoint)
    if source == 'prototypes':
        res = shot_prototypes(cfg, model, shots, shot_seed)
        protos = res.pop('prototypes')
        meta = dict(method=f'{shots}-shot class-mean prototypes of image+point embeddings', shots=shots,
                    shot_seed=shot_seed, from_checkpoint=checkpoint, **res)
    else:
        raise ValueError(source)
    model.classifier.init_prototypes(protos)
    torch.save(dict(state_dict=model.state_dict(), meta=dict(crossmost_start=meta)), out)
    return meta


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('checkpoint', nargs='?', default=None, help='weights to embed with (default: random init)')
    p.add_argument('--out', required=True)
    p.add_argument('--shots', type=int, default=1)
    p.add_argument('--shot-seed', type=int, default=0)
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    meta = make_start_checkpoint(cfg, args.checkpoint, args.out, args.shots, args.shot_seed)
    print(f'[init_classifier] {meta["method"]} -> {args.out}')


if __name__ == '__main__':
    main()
