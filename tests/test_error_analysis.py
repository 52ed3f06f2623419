"""The error report: confusion matrices and the most confident errors, with context."""

import numpy as np
import pandas as pd

from mineral_stance.context import Context
from mineral_stance.error_analysis import confident_errors, error_report
from mineral_stance.labels import Probabilities, Targets


def example():
    frame = pd.DataFrame({"text": ["他表示，合作很重要。", "美国拉帮结派。", "稀土占全球60%。"],
                          "doc_id": ["d1", "d1", "d2"]})
    targets = Targets(claims=np.array([[0, 1, 0], [0, 0, 0], [0, 0, 1]]),
                      stance=np.array([0, 1, 3]), voice=np.array([1, 0, 0]))
    probabilities = Probabilities(
        claims=np.array([[0.1, 0.2, 0.1], [0.9, 0.1, 0.1], [0.1, 0.1, 0.8]]),
        stance=np.array([[0.1, 0.1, 0.7, 0.1], [0.05, 0.9, 0.0, 0.05], [0.6, 0.0, 0.0, 0.4]]),
        voice=np.array([[0.7, 0.3], [0.9, 0.1], [0.8, 0.2]]),
    )
    decisions = probabilities.decide([0.5, 0.5, 0.5])
    contexts = [Context("", "标题一"), Context("他表示，合作很重要。", "标题一"), Context("", "标题二")]
    return frame, targets, probabilities, decisions, contexts


def test_errors_are_ranked_by_the_probability_of_the_wrong_decision():
    frame, targets, probabilities, decisions, _ = example()
    stance = confident_errors("stance", targets, probabilities, decisions)
    assert [(row, gold, predicted) for row, gold, predicted, _ in stance] == [
        (0, "support", "neutral"), (2, "unrelated", "support")]
    claims = confident_errors("claims", targets, probabilities, decisions)
    # a false threat_framing at 0.9, then a missed recommendation at 1 - 0.2
    assert [(row, gold, predicted) for row, gold, predicted, _ in claims] == [
        (1, "not threat_framing", "threat_framing"),
        (0, "policy_recommendation", "not policy_recommendation")]
    assert claims[1][3] == np.float64(0.8)


def test_report_has_confusion_matrices_and_errors_with_context():
    report = error_report("demo", *example())
    assert report.count("| gold ↓ / predicted → |") == 3 + 1 + 1  # 3 claim types, stance, voice
    assert "| support | 0 | 0 | 1 | 0 |" in report
    assert "| 0.90 | not threat_framing | threat_framing | 美国拉帮结派。 | 他表示，合作很重要。 | d1 (标题一) |" in report
    assert "| 0.70 | reported | author | 他表示，合作很重要。 |  | d1 (标题一) |" in report
