"""The demo: the main job in one command, on embedded synthetic data, without GPU or download (``make demo``).

Command line: ``python tools/demo.py [--work-dir work_dirs/demo] [--data-root data] [--skip-existing] [--quick]
[--jobs 2] [--threads N] [--steps STEP ...]``. Modules: :mod:`.runner` (the one runner: subprocesses, log tailing,
threads), :mod:`.settings` (steps, configs, data, schedules), :mod:`.demo` (the :class:`Demo`: step records and the
report), :mod:`.steps` (one module per step).

Steps (each prints its elapsed time; trainings are ``tools/train.py`` subprocesses whose mmengine logs are shown
live, prefixed by the step name, and kept in full under ``<work-dir>/logs/``):

1. ``data``       generate (or reuse) the embedded nuScenes-format root and the object sets
                  (``tools/create_synthetic_data.py``); a root is reused only when complete and made with the same
                  arguments
2. ``figures``    LiDAR points drawn on the six camera images; rendered objects next to their point clouds

then three lanes, at most ``--jobs`` (2) side by side (one CPU thread per process), or one after the other:

3. ``simipu``     SimIPU pretraining of a ResNet-18 image encoder + CenterPoint's sparse LiDAR encoder, no labels
4. ``finetune``   CenterPoint with 10 % of the labels, from the SimIPU LiDAR encoder and from scratch, same schedule
                  (``tools/label_efficiency.py``)

5. ``crosspoint`` CrossPoint pretraining of a DGCNN point encoder + ResNet-18 image encoder, no labels
6. ``probe``      linear-SVM probe of the CrossPoint point encoder vs. its random init; t-SNE of the held-out
                  features
7. ``crossmost``  Cross-MoST label-free self-training from its weak start
                  (``tools/crossmost_synthetic_acceptance.py``)

8. ``transfer_crosspoint``    the one evaluation tool, ``tools/eval_transfer.py crosspoint``, on its tiny setting
                              (2 seeds, 1 with ``--quick``; one epoch): linear probe and few-shot, pretrained vs random init
9. ``transfer_segmentation``  ``tools/eval_transfer.py segmentation`` on its tiny setting (2 seeds, a few
                              iterations, a generated SemanticKITTI root): linear probe and 10 % fine-tuning

The evaluation tool writes into ``<work-dir>/transfer/`` (never ``benchmarks/results/``); its tables are in the
report.

and finally ``<work-dir>/report.md``: every number with the command that produced it, the figures, the time of
every step.

A failing step is reported loudly with its log; the steps that do not need it still run, the report is written
with the failure marked, and the exit status is 1. ``--skip-existing`` reuses the outputs of steps that finished in
an earlier run in the same work dir (e.g. to re-render the report); with ``--steps`` only the named steps run and
the others are reused. ``--quick`` shrinks data and schedules to a smoke test (its numbers mean nothing).
"""
from .demo import Demo  # noqa: F401
from .settings import STEPS  # noqa: F401
