"""GPEN generator, model registry and checkpoint loading."""
