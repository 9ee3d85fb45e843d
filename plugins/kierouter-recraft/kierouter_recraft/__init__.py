"""kierouter plugin for KIE.ai recraft models."""
