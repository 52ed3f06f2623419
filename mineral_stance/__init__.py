"""mineral_stance: claims, stance toward the US-led minerals alliance, and voice, per sentence.

from mineral_stance import load_classifier
clf = load_classifier()
clf.predict(["美国应与盟友合作，确保供应链安全。"]).to_pandas()
"""

__version__ = "0.1.0"
__all__ = ["load_classifier", "StanceClassifier", "load_corpus"]


def __getattr__(name: str):
    # Imported lazily: torch and transformers take seconds to load, and the
    # segment/validate commands do not need them.
    if name in ("load_classifier", "StanceClassifier"):
        from mineral_stance import predict

        return getattr(predict, name)
    if name == "load_corpus":
        from mineral_stance.dataset import load_corpus

        return load_corpus
    raise AttributeError(name)
