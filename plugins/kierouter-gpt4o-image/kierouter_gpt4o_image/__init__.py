"""kierouter plugin for KIE.ai gpt4o-image models."""
