"""Phase 2: many clients at once, and every message relayed to all the others."""

from tests.grading import CLIENT, check

HINT = "protocol.md#phase-2-broadcast"


@check("relays a message to every other client, never back to the sender", points=3,
       phases=(2,), hint=HINT)
def test_relays_to_others(chat):
    alice, bob, carol = chat.relay_group("alice", "bob", "carol")
    alice.send_line("hello everyone")
    bob.expect("hello everyone")
    carol.expect("hello everyone")
    bob.send_line("hi alice")
    alice.expect("hi alice")  # her own message did not come back first
    carol.expect("hi alice")
    carol.send_line("hi both")
    alice.expect("hi both")
    bob.expect("hi both")


@check("relays bytes unchanged: UTF-8, and a message that arrives in two pieces", points=1,
       phases=(2,), hint=HINT)
def test_relays_pieces(chat):
    alice, bob = chat.relay_group("alice", "bob")
    chat.send_in_pieces(alice, [b"Gr\xc3", b"\xbc" + "ße, 世界\n".encode()],
                        "alice sent 'Grüße, 世界' in two pieces, cut inside the 'ü'")
    bob.expect("Grüße, 世界")


@check("relays every message when several clients talk at the same time", points=2,
       phases=(2,), hint=HINT)
def test_concurrent_talk(chat):
    names = ("alice", "bob", "carol", "dave")
    conns = chat.relay_group(*names)
    rounds = 25
    with chat.quiet(f"each client sent {rounds} lines ('NAME 0' to 'NAME {rounds - 1}'), "
                    "all at once, without reading"):
        for i in range(rounds):
            for conn in conns:
                conn.send_line(f"{conn.name} {i}")
    for conn in conns:
        want = {name: [f"{name} {i}" for i in range(rounds)] for name in names
                if name != conn.name}
        got = {name: [] for name in want}
        count = rounds * len(want)
        with chat.quiet():
            for n in range(count):
                line = conn.recv_line(expected=f"{conn.name} receives all {count} lines of the "
                                               f"others (received {n} so far)")
                sender = line.split(" ")[0]
                if sender not in got:
                    chat.fail(f"{conn.name} receives only the others' lines",
                              f"{conn.name} received {line!r}")
                got[sender].append(line)
        if got != want:
            chat.fail(f"{conn.name} receives each other client's lines once, in order",
                      f"{conn.name} received {got}")
        chat.step(f"{conn.name} received all {count} lines of the others, each once, in order")


@check("keeps relaying to the others after a client disconnects", points=2, phases=(2,),
       hint=HINT)
def test_survives_disconnect(chat):
    alice, bob, carol, dave = chat.relay_group("alice", "bob", "carol", "dave")
    carol.close()
    # The first send to a closed connection usually succeeds (the peer answers it
    # with a reset); the sends after it fail. So several rounds, not one.
    for i in range(3):
        alice.send_line(f"still here? {i}")
        bob.expect(f"still here? {i}")
        dave.expect(f"still here? {i}")
    dave.send_line("yes")
    alice.expect("yes")
    bob.expect("yes")
    chat.no_traceback(chat.server)


@check("keeps relaying after a client's connection is reset in the middle of the talk",
       points=2, phases=(2,), hint=HINT)
def test_survives_reset(chat):
    alice, bob, carol, dave = chat.relay_group("alice", "bob", "carol", "dave")
    bob.reset()
    for i in range(3):
        alice.send_line(f"message {i}")
    for conn in (carol, dave):
        for i in range(3):
            conn.expect(f"message {i}")
    eve = chat.connect("eve")
    eve.send_line("eve is here")
    for conn in (alice, carol, dave):
        conn.expect("eve is here")
    chat.no_traceback(chat.server)


@check("the client prints what the server relays, while it waits for you to type", points=1,
       phases=(2,), program=CLIENT, hint=HINT)
def test_client_prints_relayed(chat):
    client, server_side = chat.client_session()
    server_side.send_line("hello from bob")
    client.expect_output("hello from bob")
    client.type("hi bob")
    server_side.expect("hi bob")
    server_side.send_raw("one\ntwo, 世界\n".encode(), "the stand-in server sent two lines at once")
    client.expect_output("one")
    client.expect_output("two, 世界")
