"""statekeeper: make a Kubernetes cluster's storage & backup strategy real."""

__version__ = "0.1.0"
