"""Flask serving a scikit-learn model: the example wheelhouse locks, builds and ships."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from flask import Flask, jsonify, request
from sklearn.linear_model import LogisticRegression


def train() -> LogisticRegression:
    # A tiny deterministic model, so the image needs no downloaded weights.
    frame = pd.DataFrame({"x": np.linspace(-3, 3, 61)})
    labels = (frame["x"] > 0).astype(int)
    return LogisticRegression().fit(frame[["x"]], labels)


MODEL = train()
app = Flask(__name__)


@app.post("/predict")
def predict() -> object:
    xs = request.get_json(force=True)["x"]
    proba = MODEL.predict_proba(pd.DataFrame({"x": xs}))[:, 1]
    return jsonify({"p": [round(float(p), 4) for p in proba]})


def smoke() -> None:
    """What the image's smoke check runs: the model answers through the real app."""
    client = app.test_client()
    resp = client.post("/predict", json={"x": [-2.0, 2.0]})
    p = resp.get_json()["p"]
    assert resp.status_code == 200 and p[0] < 0.5 < p[1], p
    print("smoke ok", p)


if __name__ == "__main__":
    if sys.argv[1:] == ["smoke"]:
        smoke()
    else:
        app.run(host="127.0.0.1", port=8000)
