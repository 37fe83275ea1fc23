"""Quality metrics for generated scenes: stand-ins for CLIP score and FID, honestly named.
May import: torch, numpy, safetensors, ciarsim.errors and ciarsim.nn (data, checkpoints); nothing above nn.

- ``caption_consistency``: the share of the attributes a caption states (each object's shape,
  colour and size at its position; the background's kind and colour) that an attribute
  classifier finds in the image. The analogue of CLIP score; 1.0 = everything found.
- ``frechet_distance``: the Fréchet distance between Gaussians fitted to the classifier's
  penultimate features of generated and of real images (Heusel et al. 2017, "GANs trained by a
  two time-scale update rule converge to a local Nash equilibrium", with this classifier in place
  of Inception-v3). The analogue of FID; 0 = same feature statistics. Biased at small sample
  sizes like FID: compare only numbers computed with the same ``n_gen`` and ``n_ref``.

The classifier is a small CNN trained on the procedural generator's ground truth
(``ciarsim.nn.data``, seed ``TRAIN_SEED``; held-out accuracy measured on ``EVAL_SEED``). It
predicts, for each of the 9 position cells, the object's shape, colour and size, each with an
"empty" class (index 0), plus the background's kind and colour. Weights are stored as
safetensors with a JSON card; never as pickles.
One module per job: ``classifier`` (the model, targets, predictions), ``metrics`` (the pure metric
functions), ``training`` (training the classifier), ``store`` (saving and loading it, with the
checks of ``ciarsim.nn.checkpoints``).
"""

from ciarsim.nn.quality.classifier import (
    CELL_HEADS, HEAD_NAMES, SCENE_HEADS, AttributeClassifier, ClassifierConfig, Predictions, attrs_to_targets,
    heldout_accuracy, predict,
)  # fmt: skip
from ciarsim.nn.quality.metrics import (
    FDResult, caption_consistency, caption_consistency_per_image, frechet_distance, frechet_distance_from_features,
)  # fmt: skip
from ciarsim.nn.quality.store import CARD_FORMAT, DEFAULT_CLASSIFIER_PATH, REBUILD_COMMAND, load_classifier, save_classifier
from ciarsim.nn.quality.training import (
    DEFAULT_CLASSIFIER_STEPS, build_default_classifier, print_progress, train_classifier,
)  # fmt: skip

__all__ = [
    "CARD_FORMAT", "CELL_HEADS", "DEFAULT_CLASSIFIER_PATH", "DEFAULT_CLASSIFIER_STEPS", "HEAD_NAMES", "REBUILD_COMMAND",
    "SCENE_HEADS", "AttributeClassifier", "ClassifierConfig", "FDResult", "Predictions", "attrs_to_targets",
    "build_default_classifier", "caption_consistency", "caption_consistency_per_image", "frechet_distance",
    "frechet_distance_from_features", "heldout_accuracy", "load_classifier", "predict", "print_progress",
    "save_classifier", "train_classifier",
]  # fmt: skip
