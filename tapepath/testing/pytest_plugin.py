"""pytest plugin of tapepath.testing (fixtures arrive with the virtual library)."""
