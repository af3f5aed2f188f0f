"""Component resources of the platform: one ComponentResource a file, plus the shared helpers they use."""
