"""``tinystack doctor``: what is wrong with a cloud (its services, agents, resources, this host) and what to do.

``run.diagnose`` runs the checks; each module holds one family of them and returns ``Finding``s.
"""
