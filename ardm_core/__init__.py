"""ardm_core: an order-agnostic, character-level Autoregressive Diffusion Model.

Method: Hoogeboom et al., "Autoregressive Diffusion Models", ICLR 2022
(arXiv 2110.02037). This package never imports Qt.
"""

__version__ = "0.1.0"
