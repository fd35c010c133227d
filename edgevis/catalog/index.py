"""The catalog's names, known without importing its model files.

The model files register their variants when imported, and they import torch (~225 MB, 2 s):
checking the name a user typed that way would put torch into a process that only hands the
model to a child for export and goes on to quantize (issue 18). This list answers "is it in
the catalog?" alone; everything else comes from the registry. tests/catalog/test_registry.py
checks that it names exactly the registered models (regenerate it from
``list_models(include_fixtures=True)`` when adding one).
"""

NAMES = frozenset((
    "caformer_b36", "caformer_m36", "caformer_s18", "caformer_s36", "casvit_m", "casvit_s", "casvit_t", "casvit_xs",
    "convformer_b36", "convformer_m36", "convformer_s18", "convformer_s36", "convnext_atto", "convnext_base",
    "convnext_femto", "convnext_nano", "convnext_pico", "convnext_small", "convnext_tiny", "deit_small_patch16_224",
    "deit_tiny_patch16_224", "efficientnet_lite0", "focalnet_base_lrf", "focalnet_base_srf", "focalnet_small_lrf",
    "focalnet_small_srf", "focalnet_tiny_lrf", "focalnet_tiny_srf", "hornet_small_7x7", "hornet_small_gf",
    "hornet_tiny_7x7", "hornet_tiny_gf", "inceptionnext_atto", "inceptionnext_base", "inceptionnext_small",
    "inceptionnext_tiny", "lsnet_b", "lsnet_b_distill", "lsnet_s", "lsnet_s_distill", "lsnet_t", "lsnet_t_distill",
    "moganet_small", "moganet_tiny", "moganet_xtiny", "poolformer_m36", "poolformer_m48", "poolformer_s12",
    "poolformer_s24", "poolformer_s36", "poolformerv2_m36", "poolformerv2_m48", "poolformerv2_s12",
    "poolformerv2_s24", "poolformerv2_s36", "swin_tiny_patch4_window7_224", "test_convformer", "test_convnext",
    "test_deit", "test_lsnet", "test_poolformerv2", "test_swin",
))
