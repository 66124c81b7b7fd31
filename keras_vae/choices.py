"""Every fixed choice and limit of the library's options, by name, defined once: the library checks its
arguments against them and the CLI makes its Enums and ranges from them. Nothing here imports anything, so the
CLI reads them before a backend is chosen and --help stays instant."""

BACKENDS = ("tensorflow", "jax", "torch")
FAMILIES = ("vae", "ae", "iwae", "betatc-vae", "cvae", "vq-vae", "rae", "vamp-vae")
"""The model families, as keras_vae.models.registry.MODELS builds them."""
VARIATIONAL = ("vae", "iwae", "betatc-vae", "cvae", "vamp-vae")
"""The families whose encoder gives z_mean, z_log_var and a sampled z, under a prior: N(0, I), or a VampPrior
VAE's mixture of its posteriors at learned pseudo-inputs."""
SUMMED_ONLY = ("iwae",)
"""The families whose bound needs log p(x | z): their reconstruction loss is summed over pixels."""
SINGLE_PROCESS = ("vq-vae",)
"""The families that train in one process: a codebook and code counts each process would keep apart."""
ARCHITECTURES = ("dense", "conv", "deep-conv")
RECONSTRUCTION_LOSSES = ("bce", "mse")
REDUCTIONS = ("sum", "mean")
CODEBOOK_UPDATES = ("loss", "ema")
CROPS = ("none", "center")
LR_SCHEDULES = ("cosine", "constant")
DTYPE_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
SPLITS = ("train", "val")
SAMPLERS = ("prior", "gmm", "flow")
"""prior: the model's own (N(0, I), a VQ-VAE's learned one); gmm: a Gaussian mixture of the training codes;
flow: a continuous model's learned flow over its codes (train-prior)."""
ANIMATIONS = ("latent", "samples", "reconstructions", "traversal", "interpolation")
EXPORT_FORMATS = ("saved_model", "onnx", "keras")
EMBED_FORMATS = (".npy", ".csv")

MAX_LATENT_DIM = 4096
MAX_SEED = 2**32 - 1
"""NumPy's seeds, which keras.utils.set_random_seed and default_rng take."""
MAX_RADIUS = 100.0
"""In standard deviations of the prior: far past anything a decoder was trained on."""
MAX_K = 10_000
"""The most samples per image evaluate takes: one image's k decodes go through the decoder in one step."""
MAX_IMAGE_SIDE = 4096
MAX_STEPS_PER_EXECUTION = 10_000
MAX_CODEBOOK = 65_536
MAX_PSEUDO_INPUTS = 65_536
"""The encoder takes every pseudo-input at every step."""
MAX_QUALITY_IMAGES = 10_000
"""Precision and recall find each image's neighbours among all the others."""
MAX_PRIOR_EPOCHS = 10_000
PIXELCNN_EPOCHS = 30
FLOW_EPOCHS = 200
"""train-prior's epochs by default: a VQ-VAE's PixelCNN; a flow, which stops early at its best."""
MAX_EPOCHS = 1_000_000
MAX_STEPS = 1_000_000_000
"""Past anything trainable, and far below the 64-bit counters of the backends."""
MIN_FPS, MAX_FPS = 0.01, 100.0
"""A GIF's frame delay is 0.01 s to 655 s."""
