"""marsvision: few-label terrain segmentation and image classification for Mars rover imagery."""

__version__ = "0.1.0"
