"""tools/create_data.py (mmdet3d's arguments) converts a nuScenes root and names a broken file."""
import pickle
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_create_data_nuscenes_and_truncated_bin(tmp_path):
    from mmxmodal_bench.synthetic.nuscenes import generate_nuscenes_root
    root = tmp_path / 'nus'
    generate_nuscenes_root(str(root), num_scenes=2, samples_per_scene=1, sweeps=1, seed=3, image_size=(160, 90))
    cmd = [sys.executable, 'tools/create_data.py', 'nuscenes', '--root-path', str(root), '--version', 'v1.0-mini',
           '--out-dir', str(tmp_path / 'infos')]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    with open(tmp_path / 'infos' / 'nuscenes_infos_train.pkl', 'rb') as f:
        info = pickle.load(f)
    assert set(info) == {'metainfo', 'data_list'} and len(info['data_list']) == 1
    assert len(info['data_list'][0]['images']) == 6

    lidar = sorted((root / 'samples' / 'LIDAR_TOP').glob('*.bin'))[0]
    lidar.write_bytes(lidar.read_bytes()[:-6])  # no longer a multiple of 5 float32
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and lidar.name in r.stderr
