"""marsvision.evaluation: metrics from one confusion matrix, figures and reports, reading run logs only.

Modules (import from them directly; this package imports nothing heavy on its own):

* ``confusion``: :func:`confusion_matrix` (one ``bincount``) and the streaming, DDP-aware ``ConfusionMatrix``;
* ``metrics``: pure metric functions of a confusion matrix; ``segmentation_metrics``,
  ``classification_metrics``;
* ``palette``: the class colours shared by plots, reports and prediction overlays;
* ``probabilities``: logits → class probabilities, with optional test-time augmentation (numpy only);
* ``plots``: one PNG per function (paper figures);
* ``runlogs``: readers of run and sweep directories; ``aggregate``: mean ± std over seeds;
* ``document`` and ``report``: ``write_report(run_or_sweep_dir) -> (html_path, md_path)``.
"""
