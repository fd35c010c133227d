"""The sweep every farm test runs: two "models" (the digits-trained test_lsnet at 64 and 48 pixels) × fp32, int8."""

QUICK_PROFILE = dict(runtime="ort", warmup=2, iters=20, energy="none", idle_s=0.05)


def farm_config(ckpt, folders, out, **kw):
    """Two "models" (test_lsnet trained on digits, at 64 and at 48 pixels) × fp32, int8; short profiles."""
    from edgevis.farm import ModelSpec, SweepConfig
    from edgevis.profile.profiler import ProfileConfig

    calib, held = folders
    kw.setdefault("devices", ("alpha", "beta"))
    return SweepConfig(models=(ModelSpec("test_lsnet", str(ckpt), (64, 64)), ModelSpec("test_lsnet", str(ckpt), (48, 48))),
                       precisions=("fp32", "int8"), calib_dir=calib, holdout_dir=held, output_dir=out, rounds=1,
                       profile=ProfileConfig(**QUICK_PROFILE), **kw)
