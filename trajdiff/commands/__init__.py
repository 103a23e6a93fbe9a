"""The commands of ``trajdiff``: each one's typed config (tyro turns it into flags) and its run function.

The library below (data, diffusion, nets, agent, engine, expertise, evaluation, collection, bench
reporting) never imports from here, nor tyro, nor matplotlib (figures live in trajdiff.plots).
"""
