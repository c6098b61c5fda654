"""The error type of the deploy layer."""

__all__ = ['DeployError']


class DeployError(ValueError):
    """A user-facing export problem (bad config, checkpoint, shape or opset)."""
