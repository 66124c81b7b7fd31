"""The keras-vae command line."""
