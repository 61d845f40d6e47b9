"""Image plumbing shared by image backends: decoding, batch prefetch, weights, model cache.

Install with ``pip install 'prelabel[vision]'`` (numpy, OpenCV, Pillow). Importing these
modules is cheap: OpenCV and Pillow are imported on first use.

* :mod:`prelabel.vision.images`: task images to BGR arrays, EXIF-oriented, fetched a batch ahead.
* :mod:`prelabel.vision.weights`: weight files named in settings, read only inside the weights root.
* :mod:`prelabel.vision.cache`: loaded models, shared by every project of the process.
"""

from prelabel.vision import cache, images, weights

__all__ = ["cache", "images", "weights"]
