"""Feature types, one module each, registered in `deepwright.registry.FEATURES` (see `features.base`)."""
