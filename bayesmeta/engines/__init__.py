"""Estimation engines. Each takes a :class:`~bayesmeta.design.Design` and returns raw estimates."""
