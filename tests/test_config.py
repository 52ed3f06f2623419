"""Settings computed from the machine: inference threads."""


from mineral_stance import config
from mineral_stance.config import inference_threads


def test_inference_threads_leave_busy_cores_to_their_owners(monkeypatch):
    monkeypatch.delenv("MINERAL_STANCE_THREADS", raising=False)
    monkeypatch.setattr(config.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(config.os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    assert inference_threads() == 4
    monkeypatch.setattr(config.os, "getloadavg", lambda: (2.6, 0.0, 0.0))
    assert inference_threads() == 1
    monkeypatch.setattr(config.os, "getloadavg", lambda: (9.0, 0.0, 0.0))
    assert inference_threads() == 1  # never fewer than one
    assert inference_threads(3) == 3  # asked for: as asked
    monkeypatch.setenv("MINERAL_STANCE_THREADS", "2")
    assert inference_threads() == 2
