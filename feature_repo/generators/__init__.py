"""Synthetic traffic of the example domain: `livectx produce --generator fraud|support|shop`."""
