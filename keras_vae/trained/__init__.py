"""Everything that starts from a trained run folder: the loaded run (loaded.py) and what is made of it.

loaded.py     LoadedRun: a run folder loaded and checked, its codes, its decoding, its samplers, its data
geometry.py   the 2-D plane of a latent space (as it is, or PCA), t-SNE, straight lines and grids of codes
metrics.py    pure metric functions (compute_*) of a model on images: likelihood bounds, reconstructions,
              the latent
quality.py    sample quality: Fréchet distance, precision and recall in a feature space
evaluate.py   keras-vae evaluate: the one place that loads a run and puts its metrics together
views.py      the figures of one run, each drawn into a matplotlib Axes
explore.py    keras-vae explore and compare
generate.py   keras-vae generate and train-prior
animate.py    keras-vae animate
embed.py      keras-vae embed
export.py     keras-vae export
"""

from keras_vae.trained.loaded import LoadedRun

__all__ = ["LoadedRun"]
