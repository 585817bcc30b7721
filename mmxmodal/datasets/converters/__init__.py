"""Validators and info writers for nuScenes, KITTI and SemanticKITTI roots (real or generated).

Each module checks a root before conversion (reporting every problem with the file, table or token it concerns)
and writes mmdet3d v2 info pkls, with mmdet3d's own converters (:mod:`.mmdet3d_tools`) where mmdet3d has one.
Command line: ``tools/create_data.py`` (mmdet3d's arguments). Not imported by ``import mmxmodal``: these modules
register nothing.
"""
