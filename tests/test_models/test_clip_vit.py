"""The generated small CLIP loads in the real open_clip / OpenAI checkpoint formats (local files only) and gives
class-name text embeddings."""
import json
import os

import pytest
import torch

os.environ.setdefault('HF_HUB_OFFLINE', '1')

from mmxmodal.models.clip_utils import (TINY_CLIP_CFG, load_local_clip, make_tiny_clip,  # noqa: E402
                                        text_class_embeddings)

NAMES = ['airplane', 'chair', 'table', 'guitar']


@pytest.fixture(scope='module')
def tiny_clip(tmp_path_factory):
    return make_tiny_clip(str(tmp_path_factory.mktemp('tiny_clip')), seed=0)


def test_files_are_real_open_clip_format(tiny_clip):
    import open_clip
    with open(tiny_clip['config']) as f:
        cfg = json.load(f)
    assert cfg['model_cfg'] == json.loads(json.dumps(TINY_CLIP_CFG)) and 'preprocess_cfg' in cfg
    sd = torch.load(tiny_clip['checkpoint'], map_location='cpu', weights_only=True)
    assert 'visual.conv1.weight' in sd and 'text_projection' in sd and 'token_embedding.weight' in sd
    # stock open_clip entry points, nothing of ours in between
    m = open_clip.create_model('local-dir:' + tiny_clip['local_dir'])
    assert torch.equal(m.state_dict()['visual.proj'], sd['visual.proj'])
    open_clip.add_model_config(tiny_clip['model_config'])
    name = os.path.splitext(os.path.basename(tiny_clip['model_config']))[0]
    m2 = open_clip.create_model(name, pretrained=tiny_clip['checkpoint'])
    assert torch.equal(m2.state_dict()['token_embedding.weight'], sd['token_embedding.weight'])


def test_three_sources_give_identical_embeddings(tiny_clip):
    m1, tok1, _ = load_local_clip(local_dir=tiny_clip['local_dir'])
    m2, tok2, _ = load_local_clip(model_name=tiny_clip['model_config'], pretrained=tiny_clip['checkpoint'])
    m3, tok3, _ = load_local_clip(openai_checkpoint=tiny_clip['openai_checkpoint'])
    e = [text_class_embeddings(m, t, NAMES) for m, t in ((m1, tok1), (m2, tok2), (m3, tok3))]
    assert torch.allclose(e[0], e[1]) and torch.allclose(e[0], e[2], atol=1e-6)
    x = torch.rand(2, 3, 64, 64)
    assert torch.allclose(m1.encode_image(x), m3.encode_image(x), atol=1e-5)


def test_text_embeddings_shape_norm_determinism_and_distinct(tiny_clip):
    model, tok, _ = load_local_clip(local_dir=tiny_clip['local_dir'])
    e = text_class_embeddings(model, tok, NAMES)
    assert e.shape == (4, TINY_CLIP_CFG['embed_dim'])
    assert torch.allclose(e.norm(dim=1), torch.ones(4), atol=1e-5)
    assert torch.equal(e, text_class_embeddings(model, tok, NAMES))
    # different class names -> different embeddings
    assert (e[:, None] - e[None]).abs().sum(-1).fill_diagonal_(1.0).min() > 1e-4
    other = text_class_embeddings(model, tok, ['airplane'], templates=['a sketch of a {}.'])
    assert not torch.allclose(other[0], e[0])


def test_never_a_hub(tiny_clip):
    with pytest.raises(ValueError):
        load_local_clip(model_name='hf-hub:laion/CLIP-ViT-B-32')
    with pytest.raises(FileNotFoundError):
        load_local_clip(model_name='ViT-B-16', pretrained='openai')  # a tag, not a file
    with pytest.raises(FileNotFoundError):
        load_local_clip(local_dir=tiny_clip['local_dir'] + '_missing')


def test_encoder_module(tiny_clip):
    from mmxmodal.models.encoders import CLIPViTEncoder
    enc = CLIPViTEncoder(local_dir=tiny_clip['local_dir'])
    assert enc.has_text_tower and enc.out_channels == TINY_CLIP_CFG['embed_dim']
    img = torch.rand(2, 3, 64, 64)
    out = enc(img)
    assert out['feat'].shape == (2, 64) and out['tokens'].shape == (2, 64, 128)
    # the unmasked forward equals open_clip's own image encoder on CLIP-normalised input
    clip = enc._text['clip']
    ref = clip.encode_image((img - enc.mean) / enc.std)
    assert torch.allclose(out['feat'], ref, atol=1e-5)
    mask = torch.zeros(2, 64, dtype=torch.bool)
    mask[:, :10] = True
    assert not torch.allclose(enc(img, mask=mask)['feat'], out['feat'])
    emb = enc.class_text_embeddings(NAMES)
    assert emb.shape == (4, 64)
    # no text-tower parameter is part of the module (not trained, not averaged, not saved)
    assert not any(k.startswith(('transformer.', 'token_embedding')) for k in enc.state_dict())
    enc.release_text_tower()
    with pytest.raises(RuntimeError):
        enc.class_text_embeddings(NAMES)
    small = CLIPViTEncoder(local_dir=tiny_clip['local_dir'], image_size=32)
    assert small(torch.rand(1, 3, 32, 32))['tokens'].shape == (1, 16, 128)
