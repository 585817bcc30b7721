"""Write a small randomly initialised CLIP (open_clip + OpenAI checkpoint formats) for tests / embedded data.

    .venv/bin/python tools/make_tiny_clip.py --out-dir data/tiny_clip [--seed 0]
"""
import argparse
import json

from mmxmodal.models.clip_utils import make_tiny_clip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--out-dir', required=True)
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args()
    print(json.dumps(make_tiny_clip(args.out_dir, seed=args.seed), indent=2))


if __name__ == '__main__':
    main()
