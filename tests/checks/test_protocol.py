"""Phases 3 and 4: the chat protocol, every exact line of docs/protocol.md.

Phase 4 speaks phase 3's protocol byte for byte, so these checks run against both.

"Nobody else received anything" cannot be seen by waiting; it is shown by order
instead: after the event, the check makes something else happen on the same path and
requires that to be the very next line (a phase 3 server handles one client's lines in
order in that client's thread; a phase 4 server handles everything in order).
"""

from tests import harness
from tests.grading import (CLIENT, INVALID_NAME, USAGE, chat_line, check, goodbye, joined,
                           left, no_such_user, online, taken, unknown, welcome, whisper_in,
                           whisper_out)

BOTH = (3, 4)
LINES = "protocol.md#lines"
JOINING = "protocol.md#joining"
CHATTING = "protocol.md#chatting"
COMMANDS = "protocol.md#commands"
LEAVING = "protocol.md#leaving"
CLIENTS = "protocol.md#clients-in-every-phase"


def nothing_else(conn, names):
    """Show that ``conn`` (a joined user) received nothing unexpected: it asks /who, and
    the answer must be its very next line."""
    conn.send_line("/who")
    conn.expect(online(*names))


# --------------------------------------------------------------------------- joining


@check("welcomes a user by name and tells everyone else that they joined", points=2,
       phases=BOTH, hint=JOINING)
def test_welcome_and_joined(chat):
    alice = chat.connect("alice")
    alice.send_line("alice")
    alice.expect(welcome("alice"))
    bob = chat.connect("bob")
    bob.send_line("Bob_the-2nd")
    bob.expect(welcome("Bob_the-2nd"))
    alice.expect(joined("Bob_the-2nd"))
    carol = chat.connect("carol")
    carol.send_line("carol")
    carol.expect(welcome("carol"))
    alice.expect(joined("carol"))
    bob.expect(joined("carol"))


@check("rejects an invalid username (17 characters, a space, punctuation, not ASCII, /quit) "
       "and lets the client try again on the same connection", points=2, phases=BOTH,
       hint=JOINING)
def test_invalid_usernames(chat):
    bob = chat.connect("bob")
    for name in ["a" * 17, "bob smith", "bob!", "José", "/quit", "b.o.b"]:
        bob.send_line(name)
        bob.expect(INVALID_NAME)
    bob.send_line("Abcdefghij_-1234")  # 16 characters: the longest allowed
    bob.expect(welcome("Abcdefghij_-1234"))


@check("ignores blank lines sent before the username", points=1, phases=BOTH, hint=LINES)
def test_blank_before_name(chat):
    alice = chat.connect("alice")
    alice.send_line("   ")
    alice.send_line("\t")
    alice.send_line("")
    alice.send_line("alice")
    alice.expect(welcome("alice"))  # the very next line: no answer to the blank ones


@check("refuses a username someone online has, ignoring case, and accepts another try",
       points=2, phases=BOTH, hint=JOINING)
def test_taken_username(chat):
    (alice,) = chat.join("Alice")
    bob = chat.connect("bob")
    for name in ("ALICE", "alice", "Alice"):
        bob.send_line(name)
        bob.expect(taken(name))
    bob.send_line("bob")
    bob.expect(welcome("bob"))
    alice.expect(joined("bob"))


@check("sends nothing to a client that has not joined, and leaves it out of /who", points=1,
       phases=BOTH, hint=JOINING)
def test_not_joined_gets_nothing(chat):
    carol = chat.connect("carol")
    carol.send_line("carol!")
    carol.expect(INVALID_NAME)
    alice, bob = chat.join("alice", "bob")
    alice.send_line("hello")
    bob.expect(chat_line("alice", "hello"))
    bob.send_line("/who")
    bob.expect(online("alice", "bob"))
    bob.send_line("/quit")
    bob.expect(goodbye("bob"))
    bob.expect_closed()
    carol.send_line("carol")
    carol.expect(welcome("carol"))  # nothing of the above reached carol first


@check("does not announce a client that leaves before joining", points=1, phases=BOTH,
       hint=LEAVING)
def test_unjoined_leave_silent(chat):
    (alice,) = chat.join("alice")
    for name, leave in (("dave", "close"), ("erin", "reset")):
        conn = chat.connect(name)
        conn.send_line(f"{name}?")
        conn.expect(INVALID_NAME)
        getattr(conn, leave)()
        harness.wait_until_closed_by_peer(conn)
    chat.join("bob")
    alice.expect(joined("bob"))  # the very next line: no "left" for dave or erin before it


# --------------------------------------------------------------------------- chatting


@check("relays a chat line to every other user as '[NAME]: TEXT', and not to the sender",
       points=3, phases=BOTH, hint=CHATTING)
def test_chat_line(chat):
    alice, bob, carol = chat.join("alice", "bob", "carol")
    alice.send_line("hello everyone")
    bob.expect(chat_line("alice", "hello everyone"))
    carol.expect(chat_line("alice", "hello everyone"))
    nothing_else(alice, ["alice", "bob", "carol"])  # alice got nothing back
    carol.send_line("Grüße, 世界! 🎉")
    alice.expect(chat_line("carol", "Grüße, 世界! 🎉"))
    bob.expect(chat_line("carol", "Grüße, 世界! 🎉"))
    nothing_else(carol, ["alice", "bob", "carol"])


@check("strips spaces and tabs around a line, and ignores a line left blank", points=1,
       phases=BOTH, hint=LINES)
def test_strip_and_blank(chat):
    alice, bob = chat.join("alice", "bob")
    for blank in ("    ", "\t", ""):
        alice.send_line(blank)
    alice.send_line("  \t hi  there \t ")
    bob.expect(chat_line("alice", "hi  there"))  # the very next line: nothing for the blanks
    for blank in ("    ", "\t", ""):
        bob.send_line(blank)
    bob.send_line("   /who   ")
    bob.expect(online("alice", "bob"))  # nothing answered the blank lines


# --------------------------------------------------------------------------- commands


@check("/who lists everyone who joined, the asker included, sorted ignoring case",
       points=2, phases=BOTH, hint=COMMANDS)
def test_who(chat):
    users = chat.join("carol", "Alice", "dave", "Bob")
    pending = chat.connect("zed")  # connected, not joined: not listed
    for conn in users:
        conn.send_line("/who")
        conn.expect("--- Online (4): Alice, Bob, carol, dave ---")
    pending.close()


@check("/list and /users are aliases of /who", points=1, phases=BOTH, hint=COMMANDS)
def test_who_aliases(chat):
    alice, bob = chat.join("bob", "alice")
    for command in ("/list", "/users"):
        alice.send_line(command)
        alice.expect(online("alice", "bob"))


@check("matches the command word ignoring case (/WHO, /Whisper, /QUIT)", points=1,
       phases=BOTH, hint=COMMANDS)
def test_command_case(chat):
    alice, bob = chat.join("alice", "bob")
    alice.send_line("/WHO")
    alice.expect(online("alice", "bob"))
    alice.send_line("/Whisper bob hi")
    bob.expect(whisper_in("alice", "hi"))
    alice.expect(whisper_out("bob", "hi"))
    bob.send_line("/QUIT")
    bob.expect(goodbye("bob"))
    alice.expect(left("bob"))


@check("/whisper NAME TEXT reaches only NAME (any case), and the sender sees "
       "'[you -> NAME]: TEXT'", points=3, phases=BOTH, hint=COMMANDS)
def test_whisper(chat):
    alice, bob, carol = chat.join("alice", "bob", "carol")
    bob.send_line("/whisper ALICE   just  between us")
    alice.expect(whisper_in("bob", "just  between us"))
    bob.expect(whisper_out("alice", "just  between us"))
    bob.send_line("after the whisper")
    carol.expect(chat_line("bob", "after the whisper"))  # carol saw no whisper before it
    alice.expect(chat_line("bob", "after the whisper"))


@check("/w and /msg are aliases of /whisper", points=1, phases=BOTH, hint=COMMANDS)
def test_whisper_aliases(chat):
    alice, bob = chat.join("alice", "bob")
    for command in ("/w", "/msg"):
        alice.send_line(f"{command} Bob psst {command}")
        bob.expect(whisper_in("alice", f"psst {command}"))
        alice.expect(whisper_out("bob", f"psst {command}"))


@check("/whisper to a name nobody has answers '! No such user: NAME'", points=1,
       phases=BOTH, hint=COMMANDS)
def test_whisper_unknown(chat):
    alice, bob = chat.join("alice", "bob")
    for name in ("carol", "Zed"):
        alice.send_line(f"/whisper {name} hi")
        alice.expect(no_such_user(name))
    alice.send_line("ok")
    bob.expect(chat_line("alice", "ok"))  # bob saw nothing of the failed whispers


@check("/whisper without a name or without text answers the usage line", points=1,
       phases=BOTH, hint=COMMANDS)
def test_whisper_usage(chat):
    alice, bob = chat.join("alice", "bob")
    for line in ("/whisper", "/w bob", "/msg   bob   ", "/whisper "):
        alice.send_line(line)
        alice.expect(USAGE)
    nothing_else(bob, ["alice", "bob"])  # bob received no empty whisper


@check("/help answers lines that all start with '--- ' and name every command and alias",
       points=1, phases=BOTH, hint=COMMANDS)
def test_help(chat):
    (alice,) = chat.join("alice")
    alice.send_line("/help")
    alice.send_line("/who")
    answer = []
    while True:
        line = alice.recv_line(expected="the /help lines, then the answer to /who")
        if line == online("alice"):
            break
        answer.append(line)
    if not answer:
        chat.fail("at least one line answering /help", "nothing before the /who answer")
    for line in answer:
        if not line.startswith("--- "):
            chat.fail("every /help line starts with '--- '", harness.show(line))
    words = {w.lower().rstrip(",.:;)") for line in answer for w in line.replace("(", " ").split()}
    missing = [c for c in ("/who", "/list", "/users", "/whisper", "/w", "/msg", "/help",
                           "/quit") if c not in words]
    if missing:
        chat.fail("/help names /who, /list, /users, /whisper, /w, /msg, /help and /quit",
                  f"it does not name {', '.join(missing)}")


@check("answers an unknown command with '! Unknown command: CMD (type /help)', CMD as typed",
       points=1, phases=BOTH, hint=COMMANDS)
def test_unknown_command(chat):
    alice, bob = chat.join("alice", "bob")
    for line, word in (("/dance", "/dance"), ("/DaNcE with style", "/DaNcE"), ("/", "/"),
                       ("/who?", "/who?")):
        alice.send_line(line)
        alice.expect(unknown(word))
    alice.send_line("ok")
    bob.expect(chat_line("alice", "ok"))  # none of it was relayed


# --------------------------------------------------------------------------- leaving


@check("/quit: the user gets '--- Goodbye, NAME! ---', the connection closes, and everyone "
       "else sees the user leave once", points=2, phases=BOTH, hint=COMMANDS)
def test_quit(chat):
    alice, bob, carol = chat.join("alice", "bob", "carol")
    bob.send_line("/quit")
    bob.expect(goodbye("bob"))
    bob.expect_closed()
    alice.expect(left("bob"))
    carol.expect(left("bob"))
    nothing_else(alice, ["alice", "carol"])  # and only once
    nothing_else(carol, ["alice", "carol"])


@check("announces a user who closes the connection without /quit, once", points=2,
       phases=BOTH, hint=LEAVING)
def test_leave_by_close(chat):
    alice, bob, carol = chat.join("alice", "bob", "carol")
    bob.close()
    alice.expect(left("bob"))
    carol.expect(left("bob"))
    harness.wait_until_closed_by_peer(bob)
    nothing_else(alice, ["alice", "carol"])
    carol.send_line("/who")
    carol.expect(online("alice", "carol"))


@check("announces a user whose connection is reset, once, and carries on", points=2,
       phases=BOTH, hint=LEAVING)
def test_leave_by_reset(chat):
    alice, bob, carol = chat.join("alice", "bob", "carol")
    carol.reset()
    alice.expect(left("carol"))
    bob.expect(left("carol"))
    nothing_else(alice, ["alice", "bob"])
    chat.join("dave")
    alice.expect(joined("dave"))
    bob.expect(joined("dave"))
    chat.no_traceback(chat.server)


# --------------------------------------------------------------------------- the client


@check("the client sends the username you type, and lets you try again when the server "
       "refuses it", points=1, phases=BOTH, program=CLIENT, hint=JOINING)
def test_client_username_retry(chat):
    fake = chat.fake_server()
    client = chat.start_client(fake.port)
    server_side = fake.accept()
    client.type("alice")
    server_side.expect("alice")
    server_side.send_line(taken("alice"))
    client.expect_output(taken("alice"))
    client.type("bob")
    server_side.expect("bob")
    server_side.send_line(welcome("bob"))
    client.expect_output(welcome("bob"))
    server_side.send_line(joined("carol"))
    client.expect_output(joined("carol"))
    client.type("hi carol")
    server_side.expect("hi carol")


@check("the client prints each line from the server exactly, with no prompt or colour, when "
       "its output is not a terminal", points=2, phases=BOTH, program=CLIENT, hint=CLIENTS)
def test_client_prints_exactly(chat):
    client, server_side = chat.client_session("alice")
    lines = [joined("bob"), chat_line("bob", "héllo, 世界 🎉"), whisper_in("bob", "psst"),
             online("alice", "bob"), unknown("/x"), chat_line("bob", "a\ttab"), left("bob")]
    server_side.send_raw("".join(line + "\n" for line in lines).encode(),
                         f"the stand-in server sent {len(lines)} lines")
    for line in lines:
        client.expect_output(line)
    printed = client.lines[: len(lines) + 1]
    if printed != [welcome("alice")] + lines:
        chat.fail("exactly the lines the server sent, nothing else",
                  "it printed:\n" + "\n".join(f"  {harness.show(l)}" for l in printed))


@check("the client removes control characters from what it prints", points=1, phases=BOTH,
       program=CLIENT, hint=CLIENTS)
def test_client_removes_controls(chat):
    client, server_side = chat.client_session("alice")
    server_side.send_raw(b"\x1b[2Jhi\n[bob]: \x07be\x00ep\x1b]0;pwned\x07\n",
                         "the stand-in server sent '\\x1b[2Jhi' and "
                         "'[bob]: \\x07be\\x00ep\\x1b]0;pwned\\x07'")
    client.expect_output("[2Jhi")
    client.expect_output("[bob]: beep]0;pwned")
