"""CPU convolution kernels per backend (opt-in speed, parity-tested against Keras's own ops): each module
supplies conv, conv_transpose and on_cpu(x); the seam in keras_vae.backends chooses them per tensor."""
