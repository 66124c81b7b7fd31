"""How good a model's samples are: the Fréchet distance between generated and held-out images in a feature
space, and the precision and recall of the two sets in that space (Kynkäänniemi et al. 2019).

The feature space is a small classifier keras-vae trains on a run's training images when they have labels
(saved as RUN/classifier.keras and reused), the principal components of the training images' pixels when they
have none, or InceptionV3 from a weights file the user gives (the standard FID). Everything after the features
is NumPy in float64, the same on every backend.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_vae.errors import ConfigError

NEIGHBOURS = 3
"""k of the k-nearest-neighbour balls that precision and recall use (the paper's choice)."""
QUALITY_IMAGES = 2000
"""Held-out images, and as many samples, that sample quality compares by default."""
CLASSIFIER_EPOCHS = 4
PCA_COMPONENTS = 64
INCEPTION_SIDE = 299
PREDICT_BATCH = 256


def psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (negative rounding errors
    clipped)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def gaussian_frechet_distance(
    mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray
) -> float:
    """The squared Fréchet (2-Wasserstein) distance between N(mean_a, cov_a) and N(mean_b, cov_b):
    |mean_a - mean_b|² + tr(cov_a + cov_b - 2 (cov_a^½ cov_b cov_a^½)^½). The middle matrix is symmetric, so
    its root's trace is the sum of the roots of its eigenvalues, with none of scipy.linalg.sqrtm's complex
    parts."""
    root_a = psd_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)))
    difference = mean_a - mean_b
    return float(max(0.0, difference @ difference + np.trace(cov_a) + np.trace(cov_b) - 2 * cross))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to two sets of feature vectors (rows), as FID computes
    it."""
    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    return gaussian_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.clip(np.sum(a * a, 1)[:, None] + np.sum(b * b, 1)[None, :] - 2 * a @ b.T, 0, None)


def neighbour_radii(features: np.ndarray, k: int = NEIGHBOURS, chunk: int = 1024) -> np.ndarray:
    """Each vector's squared distance to its k-th nearest neighbour among the others."""
    return np.concatenate(
        [
            np.partition(squared_distances(features[start : start + chunk], features), k, axis=1)[
                :, k
            ]  # k = 0: itself
            for start in range(0, len(features), chunk)
        ]
    )


def coverage_of(points: np.ndarray, centres: np.ndarray, radii: np.ndarray, chunk: int = 1024) -> float:
    """The fraction of points inside at least one ball (a centre and its squared radius)."""
    inside = [
        np.any(squared_distances(points[start : start + chunk], centres) <= radii[None, :], axis=1)
        for start in range(0, len(points), chunk)
    ]
    return float(np.mean(np.concatenate(inside)))


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = NEIGHBOURS) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): the share of samples inside the manifold of
    the real features (the union of each real vector's ball out to its k-th neighbour), and the share of real
    vectors inside the samples' manifold."""
    real, fake = np.asarray(real, "float64"), np.asarray(fake, "float64")
    if min(len(real), len(fake)) <= k:
        raise ConfigError(
            f"images must be more than k = {k} on each side for precision and recall, got {len(real)} and "
            f"{len(fake)}",
            "images",
        )
    return coverage_of(fake, real, neighbour_radii(real, k)), coverage_of(
        real, fake, neighbour_radii(fake, k)
    )


def class_shares(probabilities: np.ndarray) -> np.ndarray:
    """The share of samples a classifier assigns to each class."""
    return np.bincount(np.argmax(probabilities, axis=1), minlength=probabilities.shape[1]) / len(
        probabilities
    )


@dataclass
class FeatureSpace:
    """Where images are compared: `embed(images)` gives feature vectors; `classify(images)`, where there is
    one, a classifier's class probabilities; `name` and `note` say what it is and what it cannot see."""

    name: str
    embed: object
    classify: object = None
    note: str | None = None


def build_classifier(input_shape: tuple[int, int, int], classes: int):
    """A small convnet whose 128-unit layer 'features' is the feature space."""
    import keras
    from keras import layers

    inputs = keras.Input(input_shape)
    x = inputs
    for filters in (32, 64):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.Flatten()(x)
    features = layers.Dense(128, activation="relu", name="features")(x)
    outputs = layers.Dense(classes, activation="softmax", name="classes")(layers.Dropout(0.3)(features))
    return keras.Model(inputs, outputs, name="classifier")


def classifier_origin(data) -> dict:
    """What a run's classifier must have been trained on to be used: the run's data, as it is now."""
    from keras_vae.origins import data_fingerprint

    return {
        "kind": "classifier",
        "data": data_fingerprint(data),
        "input_shape": list(data.input_shape),
        "classes": data.classes,
    }


def train_classifier(
    data, path: Path, origin: dict, seed: int = 0, epochs: int = CLASSIFIER_EPOCHS, batch_size: int = 128
):
    """The classifier, trained on a data set's training split with a fixed seed (so runs on the same data get
    the same one), written to path with its origin (classifier_origin) and its accuracy on the held-out split;
    the model and the origin written."""
    import keras

    from keras_vae.origins import save_with_origin

    keras.utils.set_random_seed(seed)
    model = build_classifier(data.input_shape, data.classes)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    model.fit(
        data.prepared("train", seed).batch(batch_size), epochs=epochs, shuffle=False, verbose=0
    )  # the stream shuffles
    accuracy = model.evaluate(data.prepared("val", None).batch(batch_size), verbose=0, return_dict=True)[
        "accuracy"
    ]
    written = origin | {"held_out_accuracy": round(float(accuracy), 4)}
    save_with_origin(model, path, written)
    return model, written


def classifier_space(classifier) -> FeatureSpace:
    import keras

    features = keras.Model(classifier.inputs, classifier.get_layer("features").output)
    return FeatureSpace(
        "the 128 features of a classifier trained on the run's training images",
        lambda images: np.asarray(features.predict(images, batch_size=PREDICT_BATCH, verbose=0)),
        lambda images: np.asarray(classifier.predict(images, batch_size=PREDICT_BATCH, verbose=0)),
    )


def pixel_space(train_images: np.ndarray) -> FeatureSpace:
    """The stand-in for unlabelled data: principal components of the training images' pixels."""
    from sklearn.decomposition import PCA

    flat = train_images.reshape(len(train_images), -1)
    pca = PCA(min(PCA_COMPONENTS, *flat.shape), random_state=0).fit(flat)
    return FeatureSpace(
        f"the {pca.n_components_} principal components of the training images' pixels",
        lambda images: pca.transform(images.reshape(len(images), -1)),
        note="the data has no labels, so no classifier stands in: the features are the principal "
        "components of "
        "the pixels, which see blur and layout more than content; give --fid-weights for InceptionV3's",
    )


def inception_space(weights: Path) -> FeatureSpace:
    """InceptionV3's 2,048 pooled features from the user's weights file (no download), images resized to 299 x
    299 and made RGB, scaled to [-1, 1] as InceptionV3 expects: the standard FID."""
    import keras

    if not Path(weights).is_file():
        raise ConfigError(
            f"fid_weights {weights} is not a file: give an InceptionV3 weights file (no top), e.g. from "
            "keras.applications",
            "fid_weights",
        )
    try:
        network = keras.applications.InceptionV3(
            include_top=False, weights=None, pooling="avg", input_shape=(INCEPTION_SIDE, INCEPTION_SIDE, 3)
        )
        with (
            warnings.catch_warnings()
        ):  # Keras warns once per layer of a file that does not fit, before it raises
            warnings.simplefilter("ignore")
            network.load_weights(str(weights))
    except (ValueError, OSError, KeyError) as error:
        first = str(error).splitlines()[0] if str(error) else ""
        raise ConfigError(
            f"fid_weights {weights} does not hold InceptionV3's weights without its top "
            f"({type(error).__name__}: {first})",
            "fid_weights",
        ) from None

    def embed(images: np.ndarray) -> np.ndarray:
        batches = []
        for start in range(0, len(images), 32):
            batch = keras.ops.image.resize(images[start : start + 32], (INCEPTION_SIDE, INCEPTION_SIDE))
            batch = keras.ops.repeat(batch, 3, axis=-1) if batch.shape[-1] == 1 else batch
            batches.append(keras.ops.convert_to_numpy(network(batch * 2.0 - 1.0, training=False)))
        return np.concatenate(batches)

    return FeatureSpace("InceptionV3 (pool3, 2,048 features): the standard FID", embed)


TRUSTED_ACCURACY = 0.8
"""The classifier's held-out accuracy below which its features are said to be too weak to trust."""


def run_feature_space(path: Path, data) -> FeatureSpace:
    """A run's feature space: with labels, the classifier at path, trained and written there first unless the
    one there records that it was trained on this very data (origins); without, the pixels' principal
    components. Its note says when it was trained again, and when its held-out accuracy is too low to
    trust."""
    import keras

    from keras_vae.origins import check_replaceable, mismatch, read_origin

    if data.classes < 2:
        return pixel_space(data.sample("train", QUALITY_IMAGES)[0])
    check_replaceable(path)
    expected, origin = classifier_origin(data), read_origin(path) if path.exists() else None
    stale = mismatch(path, origin, expected) if path.exists() else None
    classifier = None
    if path.exists() and stale is None:
        try:
            classifier = keras.saving.load_model(path, compile=False)
        except Exception:  # a damaged cache is trained again; a .keras file can fail in many ways
            stale = f"{path} could not be loaded"
    if classifier is None:
        classifier, origin = train_classifier(data, path, expected)
    accuracy = origin["held_out_accuracy"]
    notes = [f"{stale}, so it was trained again"] if stale else []
    if accuracy < TRUSTED_ACCURACY:
        notes.append(
            f"the classifier is right on only {accuracy:.1%} of the held-out images, so its features may "
            "miss what "
            "tells the classes apart and the distances in them say little; give --fid-weights for "
            "InceptionV3's"
        )
    space = classifier_space(classifier)
    space.name = f"{space.name} ({accuracy:.1%} right on held-out images)"
    space.note = "; ".join(notes) or None
    return space


def sample_quality(
    space: FeatureSpace,
    real: np.ndarray,
    labels: np.ndarray,
    fake: np.ndarray,
    fid: FeatureSpace | None = None,
) -> dict:
    """The Fréchet distance, precision and recall of fake against real images in a feature space, beside the
    distance between two halves of the real images (what the distance is at best for that many images); with a
    classifier, its accuracy on the real images, its mean confidence on the samples and how they spread over
    its classes; with fid, the FID in InceptionV3's features."""
    real_features, fake_features = space.embed(real), space.embed(fake)
    half = len(real_features) // 2
    precision, recall = precision_recall(real_features, fake_features)
    quality = {
        "quality_images": len(real),
        "frechet_distance": frechet_distance(real_features, fake_features),
        "frechet_distance_real_halves": frechet_distance(real_features[:half], real_features[half:]),
        "precision": precision,
        "recall": recall,
    }
    if space.classify is not None:
        probabilities = space.classify(fake)
        shares = class_shares(probabilities)
        quality |= {
            "classifier_accuracy": float(np.mean(np.argmax(space.classify(real), axis=1) == labels)),
            "confidence": float(np.mean(np.max(probabilities, axis=1))),
            "largest_class_share": float(shares.max()),
            "classes_covered": int(np.sum(shares > 0)),
            "class_shares": shares.round(4).tolist(),
        }
    if fid is not None:
        quality["fid"] = frechet_distance(fid.embed(real), fid.embed(fake))
    return quality


def run_sample_quality(
    run,
    sampler: str | None = None,
    images: int = QUALITY_IMAGES,
    fid_weights: Path | None = None,
    seed: int = 0,
    space: FeatureSpace | None = None,
) -> dict:
    """sample_quality of a run (trained.LoadedRun) against a seeded random, class-stratified subset of its
    data's held-out split (Dataset.sample), with as many samples from a sampler (the family's own by default):
    in the run's own feature space (run_feature_space), or in space, which compare shares between runs of the
    same data."""
    if images <= NEIGHBOURS + 1:
        raise ConfigError(
            f"quality_images must be more than {NEIGHBOURS + 1}, or 0 to leave sample quality out, got "
            f"{images}",
            "quality_images",
        )
    space = space or run_feature_space(run.folder.target(run.folder.classifier), run.dataset)
    fid = inception_space(fid_weights) if fid_weights else None
    real, labels = run.dataset.sample("val", images, seed)
    fake = run.samples(len(real), seed, sampler=sampler)
    quality = {
        "sampler": run.sampler(sampler).description,
        "features": space.name,
        **sample_quality(space, real, labels, fake, fid),
    }
    return quality | ({"features_note": space.note} if space.note else {})
