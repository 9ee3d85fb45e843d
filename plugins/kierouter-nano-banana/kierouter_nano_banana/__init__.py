"""kierouter plugin for KIE.ai nano-banana models."""
