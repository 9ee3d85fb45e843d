"""kierouter plugin for KIE.ai qwen models."""
