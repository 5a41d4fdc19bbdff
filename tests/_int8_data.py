"""Shared by the int8 tests: a calib split (never the holdout) and mask scoring."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)  # shared by the TFLite and ONNX slow tests (read-only arrays)
def calib_split() -> dict[str, np.ndarray]:
    """Even-indexed calib portraits calibrate, odd-indexed ones score (PyTorch fp32 reference)."""
    import torch

    from sinet_deploy.models import load_model
    from sinet_deploy.models.preprocessing import list_images, load_input, normalize_rgb
    from tests.conftest import CALIB, need

    files = list_images(need(CALIB))
    images = np.concatenate([load_input(p, 224, 224) for p in files])
    model = load_model("official")
    with torch.no_grad():
        ref = np.concatenate(
            [
                torch.softmax(model(torch.from_numpy(normalize_rgb(images[i : i + 1]))), 1)[
                    :, 1
                ].numpy()
                for i in range(len(images))
            ]
        )
    return {"calib": images[0::2], "test": images[1::2], "ref": ref[1::2]}


def score(session: object, split: dict[str, np.ndarray]) -> dict[str, float]:
    """Aggregate mask statistics of ``session`` on the scoring half."""
    from sinet_deploy.verify.metrics import aggregate, compare

    rows = [
        compare(split["ref"][i], session(split["test"][i : i + 1])[0, :, :, 0])  # type: ignore[operator]
        for i in range(len(split["test"]))
    ]
    return aggregate(rows)
