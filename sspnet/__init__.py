"""sspnet: tiny-person detection with SSPNet, from training to onboard inference.

Kept import-light on purpose: `import sspnet.runtime` must work on a device without torch,
so nothing here imports torch, numpy-heavy modules or the compiled extension.
"""

__version__ = "0.1.0"
