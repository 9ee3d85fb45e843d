"""kierouter plugin for KIE.ai flux-kontext models."""
