"""The inference core, below the server, batch prediction and the Python API: the input
adapter (``inputs``: requests and rows held to the schema and input policy), the
predictor contract (``predictor``: probabilities or values, never logits; non-finite
outputs refused alike) and the prediction logger (``logger``). The three callers use it;
none reaches into another's package."""
