"""kierouter plugin for KIE.ai seedream models."""
