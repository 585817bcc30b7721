"""The steps of the demo, one module each: ``run(demo) -> bool`` (True: outputs of an earlier run reused)."""
