"""The engine's stages, in the order edge.inspector.Inspector runs them on a batch of frames:

register (registration and preprocessing) → model (the DAE: score, anomaly map, encoder
activations) → classify (the heatmap classifier, for the parts at or above the threshold, when
the engine has one) → decide (the verdict, fail-safe) → regions (edge.regions: the top anomaly
regions in frame coordinates).

Each stage is a small module with a typed result; the trainer reuses register and model to
compute the classifier's training features exactly as the line does.
"""
