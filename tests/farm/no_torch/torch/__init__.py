# First on the PYTHONPATH of the Ray test's board nodes: a board has the device-side install, without torch.
raise ImportError("torch is not installed on this board (tests/farm/no_torch hides it)")
