"""A colour-blob detector written the way label_studio_ml detection models are.

The "model" finds, for each colour it knows, the box around that colour's pixels; its score
is the share of the box that colour fills (a solid patch scores 1, scattered pixels little).
Everything else follows the SDK examples' conventions, read through ``self.label_interface``:
every ``RectangleLabels`` control on an ``Image`` is filled unless ``model_skip="true"``;
``model_score_threshold`` (default 0.5) drops weak boxes; a label's ``predicted_values``
lists the colours it stands for, else a label matches the colour of its name.
"""

import numpy as np
from PIL import Image

from prelabel.compat import LabelStudioMLBase, ModelResponse, PredictionValue

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 160, 60),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 40),
}
TOLERANCE = 60  # per channel


def find_blobs(image):
    """{colour: ((left, top, right, bottom), fill)} for each colour present in the image."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    blobs = {}
    for name, rgb in COLOURS.items():
        mask = (np.abs(pixels - np.array(rgb)) <= TOLERANCE).all(axis=2)
        if not mask.any():
            continue
        rows, cols = np.nonzero(mask)
        box = (int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1)
        area = (box[2] - box[0]) * (box[3] - box[1])
        blobs[name] = (box, float(mask.sum()) / area)
    return blobs


class ColourDetector(LabelStudioMLBase):
    def setup(self):
        self.set("model_version", "colours-1.0.0")

    def _targets(self):
        """(control, its image, threshold, {colour: label}) for each control to fill."""
        targets = []
        for control in self.label_interface.controls:
            if control.tag != "RectangleLabels" or control.objects[0].tag != "Image":
                continue
            if control.attr.get("model_skip", "false").lower() == "true":
                continue
            threshold = float(control.attr.get("model_score_threshold", 0.5))
            colour_to_label = {}
            for label, label_tag in control.labels_attrs.items():
                predicted = label_tag.attr.get("predicted_values", "")
                for colour in predicted.split(",") if predicted else [label.lower()]:
                    if colour.strip() in COLOURS:
                        colour_to_label[colour.strip()] = label
            targets.append((control, control.objects[0], threshold, colour_to_label))
        return targets

    def predict(self, tasks, context=None, **kwargs):
        targets = self._targets()
        predictions = []
        for task in tasks:
            regions = []
            for control, image_tag, threshold, colour_to_label in targets:
                path = self.get_local_path(task["data"][image_tag.value_name], task_id=task["id"])
                with Image.open(path) as image:
                    width, height = image.size
                    blobs = find_blobs(image)
                for colour, ((left, top, right, bottom), fill) in blobs.items():
                    if colour not in colour_to_label or fill < threshold:
                        continue
                    regions.append(
                        {
                            "from_name": control.name,
                            "to_name": image_tag.name,
                            "type": "rectanglelabels",
                            "original_width": width,
                            "original_height": height,
                            "image_rotation": 0,
                            "value": {
                                "x": 100 * left / width,
                                "y": 100 * top / height,
                                "width": 100 * (right - left) / width,
                                "height": 100 * (bottom - top) / height,
                                "rotation": 0,
                                "rectanglelabels": [colour_to_label[colour]],
                            },
                            "score": fill,
                        }
                    )
            score = min((r["score"] for r in regions), default=None)
            predictions.append(PredictionValue(result=regions, score=score))
        return ModelResponse(predictions=predictions)
