"""The load generator and the benchmark: every message arrives once and in order, the
tool notices when one does not, and the benchmark still runs (at a tiny size)."""

import json

import pytest

from tests.load import bench, loadgen

pytestmark = pytest.mark.repo


@pytest.mark.parametrize("phase", [3, 4])
def test_no_message_lost_duplicated_or_reordered(phase):
    """50 clients, 10 of them sending 200 messages each as fast as the server takes them:
    every other client gets every message exactly once, in each sender's order."""
    result = loadgen.measure(phase, clients=50, senders=10, messages=200, timeout=30,
                             idle_timeout=5)
    assert result["expected"] == 10 * 200 * 49
    assert result["delivered"] == result["expected"], loadgen.report(result)
    assert loadgen.problems(result) == [], loadgen.report(result)
    assert result["unexpected_lines"] == 0, result["unexpected_samples"]


def test_the_checker_counts_lost_duplicated_reordered_and_misdirected():
    """The verifier itself: feed it a stream with one of each fault."""
    class Tally(dict):
        def __missing__(self, key):
            return 0

    tally = Tally()
    # sender 1 sends 0..4: 1 is lost, 3 comes twice, 2 after 4; sender 9 is nobody we expect
    found = [(b"1", b"0", b"5"), (b"1", b"3", b"5"), (b"1", b"3", b"5"), (b"1", b"4", b"5"),
             (b"1", b"2", b"5"), (b"9", b"0", b"5")]
    loadgen.Swarm._tally_problems(found, {1}, 5, tally)
    assert dict(tally) == {"lost": 1, "duplicated": 1, "out_of_order": 1, "misdirected": 1}


def test_raw_window_keeps_phase_2_lines_whole():
    """Phase 2 relays what one recv(4096) returns: a sender's messages in flight must fit."""
    assert loadgen.window_for("raw", 64, 40) * 40 <= loadgen.RAW_RECV
    assert loadgen.window_for("raw", None, 5000) == 1
    assert loadgen.window_for("chat", 64, 40) == 64


def test_benchmark_runs_at_a_tiny_size(tmp_path, capsys):
    """The full benchmark takes minutes; this runs the same code for 5 clients, so that
    the command cannot rot."""
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    status = bench.main(["--sizes", "5", "--deliveries", "2000", "--rate", "20",
                         "--rate-seconds", "0.25", "--repeat", "2", "--select-demo", "0",
                         "--no-slow-reader", "--json", str(out_json),
                         "--markdown", str(out_md)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    data = json.loads(out_json.read_text())
    assert [(r["phase"], r["clients"]) for r in data["rows"]] == [(2, 5), (3, 5), (4, 5)]
    for row in data["rows"]:
        assert row["throughput"]["delivered"] == row["throughput"]["expected"] > 0
        assert row["latency"]["latency_ms"]["p99"] is not None
    table = out_md.read_text()
    for phase in (2, 3, 4):
        assert bench.SHORT[phase] in table and bench.LABELS[phase] in printed
