"""kierouter plugin for KIE.ai midjourney models."""
