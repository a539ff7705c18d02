"""Phase 4's optional extensions (docs/protocol.md, "Phase 4 extensions"): /nick, /status,
/whois, history for newcomers, and files. Graded only with --extensions when grading a
submission; always run against the reference phase 4."""

import base64
import binascii
import re

from tests.grading import (CLIENT, EXTENSIONS, INVALID_NAME, chat_line, check, joined, left,
                           no_such_user, online, taken, welcome, whisper_in)
from tests.harness import show

EXT = {"phases": (4,), "group": EXTENSIONS}
NICK = "protocol.md#nicknames-nick-name"
STATUS = "protocol.md#status-status-text"
WHOIS = "protocol.md#activity-whois-name"
HISTORY = "protocol.md#history"
FILES = "protocol.md#sharing-files"

NICK_USAGE = "! Usage: /nick <new name>"
WHOIS_USAGE = "! Usage: /whois <username>"
FILE_USAGE = "! Usage: /file <username> <size> <filename>"
FINISH_FIRST = "! Finish sending your file first"
NO_TRANSFER = "! No file transfer in progress"
DURATION = r"(?:\d+h \d+m \d+s|\d+m \d+s|\d+s)"


def file_line(sender, what):
    return f"[file from {sender}]: {what}"


def cancelled(reason):
    return f"! File transfer cancelled: {reason}"


@check("/nick renames you: you see '--- You are now known as NEW ---', everyone else "
       "'--- OLD is now known as NEW ---'", points=2, hint=NICK, **EXT)
def test_nick(chat):
    alice, bob, carol = chat.join("alice", "bob", "carol")
    alice.send_line("/nick Alice_2")
    alice.expect("--- You are now known as Alice_2 ---")
    bob.expect("--- alice is now known as Alice_2 ---")
    carol.expect("--- alice is now known as Alice_2 ---")
    bob.send_line("/who")
    bob.expect(online("Alice_2", "bob", "carol"))
    bob.send_line("/w alice_2 hi")
    alice.expect(whisper_in("bob", "hi"))
    bob.expect("[you -> Alice_2]: hi")
    bob.send_line("/w alice hi")
    bob.expect(no_such_user("alice"))
    newcomer = chat.connect("newcomer")
    newcomer.send_line("alice")  # the old name is free again
    newcomer.expect(welcome("alice"))
    for conn in (alice, bob, carol):
        conn.expect(joined("alice"))


@check("/nick refuses an invalid name, a name someone else has (ignoring case), and a "
       "missing or two-word name; changing only your name's case is allowed", points=2,
       hint=NICK, **EXT)
def test_nick_refused(chat):
    alice, bob = chat.join("alice", "bob")
    for line, answer in (("/nick bob smith", NICK_USAGE), ("/nick", NICK_USAGE),
                         ("/nick bob!", INVALID_NAME), ("/nick " + "a" * 17, INVALID_NAME),
                         ("/nick BOB", taken("BOB"))):
        alice.send_line(line)
        alice.expect(answer)
    alice.send_line("/nick Alice")
    alice.expect("--- You are now known as Alice ---")
    bob.expect("--- alice is now known as Alice ---")  # nothing before: refusals are private


@check("/status TEXT shows after your name in /who, /status alone clears it, and more than "
       "64 characters is refused", points=2, hint=STATUS, **EXT)
def test_status(chat):
    alice, bob = chat.join("alice", "bob")
    bob.send_line("/status at lunch")
    bob.expect("--- Status set: at lunch ---")
    alice.send_line("/who")
    alice.expect("--- Online (2): alice, bob (at lunch) ---")  # and nobody was notified
    bob.send_line("/status " + "x" * 65)
    bob.expect("! Status too long (max 64 characters)")
    bob.send_line("/status " + "y" * 64)
    bob.expect(f"--- Status set: {'y' * 64} ---")
    bob.send_line("/status")
    bob.expect("--- Status cleared ---")
    alice.send_line("/who")
    alice.expect(online("alice", "bob"))


@check("/whois NAME says how long NAME has been online and idle", points=1, hint=WHOIS,
       **EXT)
def test_whois(chat):
    alice, bob = chat.join("alice", "bob")
    alice.send_line("/whois BOB")
    alice.expect(re.compile(rf"--- bob: online {DURATION}, idle {DURATION} ---"))
    bob.send_line("/status away")
    bob.expect("--- Status set: away ---")
    alice.send_line("/whois bob")
    alice.expect(re.compile(rf"--- bob \(away\): online {DURATION}, idle {DURATION} ---"))
    for line, answer in (("/whois zed", no_such_user("zed")), ("/whois", WHOIS_USAGE),
                         ("/whois bob alice", WHOIS_USAGE)):
        alice.send_line(line)
        alice.expect(answer)


@check("a newcomer gets the last chat lines (at most 20, no whispers or notices) right after "
       "its welcome, and nothing when no one has chatted", points=2, hint=HISTORY, **EXT)
def test_history(chat):
    alice, bob = chat.join("alice", "bob")
    carol = chat.connect("carol")
    carol.send_line("carol")
    carol.expect(welcome("carol"))
    carol.send_line("/who")
    carol.expect(online("alice", "bob", "carol"))  # no history: nothing in between
    for conn in (alice, bob):
        conn.expect(joined("carol"))
    with chat.quiet("alice sent 25 chat lines, 'line 0' to 'line 24', and bob received them"):
        for i in range(25):
            alice.send_line(f"line {i}")
        for i in range(25):
            bob.expect(chat_line("alice", f"line {i}"))
    alice.send_line("/w bob secret")
    bob.expect(whisper_in("alice", "secret"))
    dave = chat.connect("dave")
    dave.send_line("dave")
    dave.expect(welcome("dave"))
    dave.expect("--- Last 20 messages ---")
    with chat.quiet("dave received 'line 5' to 'line 24'"):
        for i in range(5, 25):
            dave.expect(chat_line("alice", f"line {i}"))
    dave.expect("--- End of history ---")
    dave.send_line("/who")
    dave.expect(online("alice", "bob", "carol", "dave"))


def start_file(alice, bob, size=5, name="hello.txt"):
    alice.send_line(f"/file bob {size} {name}")
    bob.expect(file_line("alice", f"begin {size} {name}"))


@check("relays a file: begin, data and end to the receiver, then '--- Sent FILENAME (SIZE "
       "bytes) to NAME ---' to the sender", points=2, hint=FILES, **EXT)
def test_file(chat):
    alice, bob = chat.join("alice", "bob")
    start_file(alice, bob, 11, "notes v2.txt")
    for piece in ("aGVsbG8g", "d29ybGQ="):  # "hello world", in two pieces
        alice.send_line(f"/filedata {piece}")
        bob.expect(file_line("alice", f"data {piece}"))
    alice.send_line("/fileend")
    bob.expect(file_line("alice", "end"))
    alice.expect("--- Sent notes v2.txt (11 bytes) to bob ---")
    start_file(alice, bob, 0, "empty")  # and the next file
    alice.send_line("/fileend")
    bob.expect(file_line("alice", "end"))
    alice.expect("--- Sent empty (0 bytes) to bob ---")


@check("refuses a bad /file (usage, an unknown user, over 1 MiB, a second file at once) "
       "and drops its lines quietly, refuses /nick meanwhile, and data or end with no file",
       points=2, hint=FILES, **EXT)
def test_file_refused(chat):
    alice, bob = chat.join("alice", "bob")
    for line, answer in (("/file bob", FILE_USAGE), ("/file bob five x.txt", FILE_USAGE),
                         ("/file zed 5 x.txt", no_such_user("zed")),
                         ("/file bob 1048577 big.bin", "! File too large (max 1048576 bytes)")):
        alice.send_line(line)
        alice.expect(answer)
        # The refused file's lines, already sent: dropped without a word (the next
        # line alice gets answers what she sends next).
        alice.send_line("/filedata aGVsbG8=")
        alice.send_line("/fileend")
    for line in ("/filedata aGVsbG8=", "/fileend"):  # no file started at all
        alice.send_line(line)
        alice.expect(NO_TRANSFER)
    alice.send_line("/file bob 1048576 max.bin")
    bob.expect(file_line("alice", "begin 1048576 max.bin"))  # exactly 1 MiB is allowed
    alice.send_line("/file bob 5 second.txt")
    alice.expect(FINISH_FIRST)
    alice.send_line("/nick alice2")
    alice.expect(FINISH_FIRST)


@check("cancels a file on bad base64, on more or less data than announced, and when the "
       "receiver or the sender leaves", points=2, hint=FILES, **EXT)
def test_file_cancelled(chat):
    alice, bob, carol = chat.join("alice", "bob", "carol")
    for data, reason in (("not base64!", "bad file data"),
                         ("aGVsébG8=", "bad file data"),  # not even ASCII
                         ("aGVsbG8gd29ybGQ=", "more data than the size announced")):
        start_file(alice, bob)
        alice.send_line(f"/filedata {data}")
        alice.expect(cancelled(reason))
        bob.expect(file_line("alice", "cancel"))
        alice.send_line("/filedata aGVsbG8=")  # dropped quietly until /fileend
        alice.send_line("/fileend")
    start_file(alice, bob)
    alice.send_line("/filedata aGk=")
    bob.expect(file_line("alice", "data aGk="))
    alice.send_line("/fileend")
    alice.expect(cancelled("less data than the size announced"))
    bob.expect(file_line("alice", "cancel"))
    start_file(alice, bob)
    bob.close()
    alice.expect(cancelled("bob left"))
    alice.expect(left("bob"))
    carol.expect(left("bob"))
    carol.send_line("/file alice 5 back.txt")
    alice.expect(file_line("carol", "begin 5 back.txt"))
    carol.close()
    alice.expect(file_line("carol", "cancel"))
    alice.expect(left("carol"))


# ---------------------------------------------------------------- the client's side

CLIENT_FILES = {"program": CLIENT, "hint": FILES, **EXT}


@check("the client saves a file it receives into its --downloads folder, under a name that "
       "cannot leave that folder, never over an existing file, and keeps nothing of a "
       "cancelled or malformed file", points=2, **CLIENT_FILES)
def test_client_saves_files(chat, tmp_path):
    downloads = tmp_path / "home" / "downloads"  # "../../x" from here is still in tmp_path
    client, server = chat.client_session("alice", extra_args=["--downloads", str(downloads)])
    for _ in range(2):  # the same name twice: the second must not overwrite the first
        server.send_line(file_line("bob", "begin 5 ../../notes.txt"))
        server.send_line(file_line("bob", "data aGVsbG8="))  # "hello"
        server.send_line(file_line("bob", "end"))
    server.send_line(file_line("bob", "begin 5 half.txt"))
    server.send_line(file_line("bob", "data aGVs"))  # "hel", then the sender leaves
    server.send_line(file_line("bob", "cancel"))
    server.send_line(file_line("bob", "begin lots odd.txt"))  # a size that is no number
    server.send_line(file_line("bob", "data aGVsbG8="))
    server.send_line(file_line("bob", "end"))
    # Lines are handled in order: once this one is printed, the files above are done.
    server.send_line(chat_line("bob", "done"))
    client.expect_output(chat_line("bob", "done"))
    found = {str(path.relative_to(tmp_path)): path.read_bytes()
             for path in sorted(tmp_path.rglob("*")) if path.is_file()}
    wanted = {"home/downloads/notes (1).txt": b"hello", "home/downloads/notes.txt": b"hello"}
    if found != wanted:
        chat.fail(f"exactly these files: {wanted}", f"{found or 'no file at all'}")


@check("the client keeps at most 4 MiB of unfinished files: it declines an offer past that "
       "with a '! ' line, and takes files again once a transfer ends",
       points=1, phases=(4,), group=EXTENSIONS, program=CLIENT,
       hint="protocol.md#sharing-files")
def test_client_bounds_unfinished_files(chat, tmp_path):
    downloads = tmp_path / "downloads"
    client, server = chat.client_session("alice", extra_args=["--downloads", str(downloads)])
    for sender in ("s1", "s2", "s3", "s4"):  # 4 MiB announced, none of it ever ends
        server.send_line(file_line(sender, "begin 1048576 big.bin"))
    server.send_line(file_line("s5", "begin 5 late.txt"))
    client.expect_output(re.compile(r"! .*s5.*"))
    for sender in ("s5", "s6"):  # s5 was declined: its data is ignored; s6 comes after a cancel
        if sender == "s6":
            server.send_line(file_line("s1", "cancel"))
            server.send_line(file_line("s6", "begin 5 late.txt"))
        server.send_line(file_line(sender, "data aGVsbG8="))
        server.send_line(file_line(sender, "end"))
    server.send_line(chat_line("bob", "done"))
    client.expect_output(chat_line("bob", "done"))
    found = sorted(path.name for path in downloads.glob("*")) if downloads.exists() else []
    if found != ["late.txt"]:
        chat.fail("one file saved, late.txt from s6", f"{found or 'no file at all'}")


@check("the client's '/sendfile NAME PATH' sends the file as '/file NAME SIZE FILENAME', "
       "'/filedata BASE64' lines under 1024 bytes and '/fileend', and refuses a file over "
       "1 MiB itself", points=2, **CLIENT_FILES)
def test_client_sends_files(chat, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_bytes(bytes(range(256)) * 10)  # 2,560 bytes: more than one line's worth
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (1024 * 1024 + 1))
    client, server = chat.client_session("alice")
    client.type(f"/sendfile bob {notes}")
    server.expect("/file bob 2560 notes.txt")
    received = b""
    while (line := server.recv_line()) != "/fileend":
        if not line.startswith("/filedata ") or len(line.encode()) > 1024:
            chat.fail("'/filedata BASE64' lines of at most 1024 bytes, then '/fileend'",
                      show(line))
        try:
            received += base64.b64decode(line.removeprefix("/filedata "), validate=True)
        except binascii.Error:
            chat.fail("valid base64 after '/filedata '", show(line))
    if received != notes.read_bytes():
        chat.fail("the file's 2,560 bytes, in order", f"{len(received)} different bytes")
    client.type(f"/sendfile bob {big}")
    client.type("after the big file")
    server.expect("after the big file")  # nothing of the big file came first
