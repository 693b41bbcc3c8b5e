"""finops: one FOCUS cost model for cloud, Kubernetes and AI spend."""

__version__ = "0.1.0"
