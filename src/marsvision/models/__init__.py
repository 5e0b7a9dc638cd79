"""marsvision.models: encoders behind one registry, heads, task models, parameter counting, converters."""

from marsvision.models.counting import model_info, parameter_counts
from marsvision.models.encoders import create_encoder, list_encoders
from marsvision.models.heads import AtrousHead, ProjectionHead
from marsvision.models.segmenter import AtrousSegmenter, ContrastiveSegmenter, SimCLRModel
from marsvision.models.simclrv2_resnet import SimCLRv2ResNet
from marsvision.models.weights import LoadReport, export_encoder, load_encoder_weights

__all__ = [
    "AtrousHead",
    "AtrousSegmenter",
    "ContrastiveSegmenter",
    "LoadReport",
    "ProjectionHead",
    "SimCLRModel",
    "SimCLRv2ResNet",
    "create_encoder",
    "export_encoder",
    "list_encoders",
    "load_encoder_weights",
    "model_info",
    "parameter_counts",
]
