"""Where audio lives: local disk (the embedded default) or an S3-compatible bucket."""
