# CrossPoint with the PointNet encoder (1024-d global feature, projection 1024 -> 1024 -> 256 as in CrossPoint).
_base_ = ['./crosspoint_dgcnn.py']
model = dict(
    point_encoder=dict(
        _delete_=True, type='PointNetEncoder', in_channels=3, mlp_channels=(64, 64, 64, 128), emb_dims=1024),
    point_head=dict(in_channels=1024, hidden_channels=1024))
