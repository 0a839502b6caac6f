"""Compute: the Nova-compatible v2.1 API, its conductor, and (in agent.py/drivers) the node agent."""
