"""Train a conv VAE on MNIST IDX files and save it.

    python examples/quickstart.py [IDX_FOLDER] [EPOCHS]

IDX_FOLDER holds t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]
(default: ../shared/data/mnist-test). The model goes to saved_models/quickstart.keras.
"""

import sys

import keras

from keras_vae import build_model
from keras_vae.data import load_idx_split

folder = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/mnist-test"
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
x, _ = load_idx_split(folder)
keras.utils.set_random_seed(0)
model = build_model("vae", arch="conv", latent_dim=2, input_shape=x.shape[1:])
model.compile(optimizer=keras.optimizers.Adam(1e-3))
model.fit(x[:9000], validation_data=(x[9000:],), epochs=epochs, batch_size=128, verbose=2)
model.save("saved_models/quickstart.keras")
print("saved saved_models/quickstart.keras")
