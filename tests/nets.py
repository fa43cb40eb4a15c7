"""Networks shared by the model and gateware tests."""

import numpy as np

from spikefab.host.network import Network


def all_to_all(n_inputs: int = 4, size: int = 64) -> Network:
    """Every neuron projects to every neuron (and, recorded, to the host): full fan-out."""
    net = Network()
    inp = net.add_input("in", n_inputs)
    pop = net.add_population("all", size, beta=4000, threshold=100, record=True)
    net.connect(inp, pop, np.full((n_inputs, size), 120))
    net.connect(pop, pop, np.full((size, size), 3))
    return net
