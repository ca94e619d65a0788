"""Where audio lives: local disk (embedded default); S3-compatible storage comes later."""
