"""Phase 1: an echo server that serves one client at a time, and its client."""

import time

from tests.grading import CLIENT, check

HINT = "protocol.md#phase-1-echo"


@check("echoes every line back unchanged, UTF-8 and spaces included", points=2, phases=(1,),
       hint=HINT)
def test_echoes_lines(chat):
    alice = chat.connect("alice")
    for line in ["hello", "Grüße, 世界! 🎉", "  spaced   out  ", ""]:
        alice.send_line(line)
        alice.expect(line)


@check("echoes a line that arrives in two pieces, even cut inside a UTF-8 character",
       points=1, phases=(1,), hint=HINT)
def test_echoes_pieces(chat):
    alice = chat.connect("alice")
    chat.send_in_pieces(alice, [b"Gr\xc3", b"\xbc\xc3\x9fe\n"],
                        "alice sent 'Grüße' in two pieces, cut inside the 'ü'")
    alice.expect("Grüße")


@check("serves the next client after the first one leaves", points=2, phases=(1,), hint=HINT)
def test_serves_next_client(chat):
    for name in ("alice", "bob", "carol"):
        conn = chat.connect(name)
        conn.send_line(f"I am {name}")
        conn.expect(f"I am {name}")
        conn.close()


@check("keeps serving after a client vanishes without closing (its connection is reset)",
       points=1, phases=(1,), hint=HINT)
def test_survives_reset(chat):
    alice = chat.connect("alice")
    alice.send_line("hello")
    alice.expect("hello")
    alice.reset()
    bob = chat.connect("bob")
    bob.send_line("still there?")
    bob.expect("still there?")
    chat.no_traceback(chat.server)


@check("leaves a second client unanswered until the first one leaves", points=1, phases=(1,),
       hint=HINT)
def test_one_client_at_a_time(chat):
    alice = chat.connect("alice")
    alice.send_line("first")
    alice.expect("first")
    bob = chat.connect("bob")
    bob.send_line("me too")
    # Nothing can prove "never"; a server that (wrongly) serves bob at once gets a fair
    # chance to answer him: alice keeps talking for a quarter of a second meanwhile. A
    # correct server cannot answer bob at all until she leaves.
    rounds, until = 0, time.monotonic() + 0.25
    with chat.quiet("alice kept sending lines and receiving each back for 0.25 s; "
                    "meanwhile bob received nothing"):
        while time.monotonic() < until:
            alice.send_line(f"line {rounds}")
            alice.expect(f"line {rounds}")
            rounds += 1
            if bob.pending():
                chat.fail("no answer for bob while alice is connected",
                          f"bob received {bob.pending()!r}")
    alice.close()
    bob.expect("me too")


@check("the client prints the echo of each line typed", points=1, phases=(1,), program=CLIENT,
       hint=HINT)
def test_client_prints_echo(chat):
    client, server_side = chat.client_session()
    for line in ["hello", "Grüße, 世界!"]:
        client.type(line)
        server_side.expect(line)
        server_side.send_line(line)
        client.expect_output(line)


@check("the client waits for the whole echoed line before printing it", points=1,
       phases=(1,), program=CLIENT, hint=HINT)
def test_client_waits_for_whole_line(chat):
    client, server_side = chat.client_session()
    client.type("hello world")
    server_side.expect("hello world")
    chat.send_in_pieces(server_side, [b"hello ", b"world\n"],
                        "the stand-in server echoed it in two pieces")
    client.expect_output("hello world")
