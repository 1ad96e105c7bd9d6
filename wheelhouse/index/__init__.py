"""index: wheel inspection and the static PEP 503/691 index of a wheelhouse."""
