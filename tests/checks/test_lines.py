"""Phases 3 and 4: how the server cuts bytes into lines, decodes and cleans them, and the
line limit (docs/protocol.md, "Lines")."""

from tests import harness
import pytest
from tests.grading import (INVALID_NAME, TOO_LONG, chat_line, check, joined, online,
                           welcome, whisper_in, whisper_out)

BOTH = (3, 4)
HINT = "protocol.md#lines"


@check("reads a line that arrives in pieces, cut anywhere: inside a UTF-8 character, "
       "between \\r and \\n", points=2, phases=BOTH, hint=HINT)
def test_line_in_pieces(chat):
    (alice,) = chat.join("alice")
    bob = chat.connect("bob")
    chat.send_in_pieces(bob, [b"b", b"o", b"b\n"], "bob sent his name 'bob' in three pieces")
    bob.expect(welcome("bob"))
    alice.expect(joined("bob"))
    for pieces, text in ([b"hel", b"lo bob\n"], "hello bob"), \
                        ([b"Gr\xc3", b"\xbc\xc3\x9fe\n"], "Grüße"), \
                        ([b"one\r", b"\n"], "one"):
        chat.send_in_pieces(alice, pieces, f"alice sent {text!r} in pieces: {pieces!r}")
        bob.expect(chat_line("alice", text))
    chat.send_in_pieces(bob, [b"/wh", b"o\n"], "bob sent '/who' in two pieces")
    bob.expect(online("alice", "bob"))


@check("reads several lines that arrive in one piece", points=2, phases=BOTH, hint=HINT)
def test_lines_in_one_piece(chat):
    alice, bob = chat.join("alice", "bob")
    alice.send_raw(b"one\ntwo\nthree\nfo", "alice sent 'one', 'two', 'three' and the start "
                                           "of 'four' in one piece")
    for text in ("one", "two", "three"):
        bob.expect(chat_line("alice", text))
    alice.send_raw(b"ur\n", "alice sent the rest of 'four'")
    bob.expect(chat_line("alice", "four"))
    bob.send_raw(b"/who\n/w alice psst\n", "bob sent '/who' and '/w alice psst' in one piece")
    bob.expect(online("alice", "bob"))
    bob.expect(whisper_out("alice", "psst"))
    carol = chat.connect("carol")
    carol.send_raw(b"carol\nhi from carol\n", "carol sent her name and a chat line in one piece")
    carol.expect(welcome("carol"))
    bob.expect(joined("carol"))
    bob.expect(chat_line("carol", "hi from carol"))


@check("accepts lines ending in \\r\\n (telnet, nc -C)", points=1, phases=BOTH, hint=HINT)
def test_crlf(chat):
    (alice,) = chat.join("alice")
    carol = chat.connect("carol")
    carol.send_raw(b"carol\r\n")
    carol.expect(welcome("carol"))
    alice.expect(joined("carol"))
    carol.send_raw(b"hi\r\n")
    alice.expect(chat_line("carol", "hi"))
    carol.send_raw(b"/w alice psst\r\n")
    alice.expect(whisper_in("carol", "psst"))


@check("turns bytes that are not UTF-8 into the replacement character \ufffd, and carries on",
       points=1, phases=BOTH, hint=HINT)
def test_invalid_utf8(chat):
    alice, bob = chat.join("alice", "bob")
    alice.send_raw(b"caf\xe9 ok\n")
    bob.expect(chat_line("alice", "caf\ufffd ok"))
    alice.send_raw(b"\xff\xfe hi\n")
    bob.expect(chat_line("alice", "\ufffd\ufffd hi"))
    carol = chat.connect("carol")
    carol.send_raw(b"c\xffrol\n")
    carol.expect(INVALID_NAME)
    bob.send_line("/who")
    bob.expect(online("alice", "bob"))
    chat.no_traceback(chat.server)


@check("removes control characters from what users send (escape sequences, NUL, DEL, C1), "
       "keeping tabs", points=2, phases=BOTH, hint=HINT)
def test_control_characters(chat):
    alice, bob = chat.join("alice", "bob")
    for sent, relayed in (("\x1b[31mred\x1b[0m", "[31mred[0m"),
                          ("a\x00b\x7fc\u0085d\u009be\x08f\rg", "abcdefg"),
                          ("tab\tinside", "tab\tinside"),
                          (" \x00 padded \x00 ", "padded")):
        alice.send_line(sent)
        bob.expect(chat_line("alice", relayed))
    alice.send_line("\x07\x00\x1b")  # nothing left: a blank line, ignored
    bob.send_line("\x00/who")
    bob.expect(online("alice", "bob"))  # a command once cleaned; nothing relayed before
    carol = chat.connect("carol")
    carol.send_line("\x00carol\x07")
    carol.expect(welcome("carol"))
    bob.expect(joined("carol"))


@check("accepts a line of exactly 1024 bytes (counted in bytes, not characters, without its "
       "\\r\\n)", points=2, phases=BOTH, hint=HINT)
def test_1024_bytes(chat):
    alice, bob = chat.join("alice", "bob")
    for text, ending, what in (("x" * 1024, b"\n", "1024 × 'x'"),
                               ("é" * 512, b"\n", "512 × 'é' (1024 bytes)"),
                               ("y" * 1024, b"\r\n", "1024 × 'y' and \\r\\n")):
        alice.send_raw(text.encode() + ending, f"alice sent {what}")
        bob.expect(chat_line("alice", text))


@check("rejects a line of 1025 bytes with '! Line too long (max 1024 bytes)', relays none of "
       "it, and carries on", points=2, phases=BOTH, hint=HINT)
def test_1025_bytes(chat):
    alice, bob = chat.join("alice", "bob")
    for data, what in ((b"x" * 1025 + b"\n", "1025 × 'x'"),
                       (("é" * 512 + "a\n").encode(), "512 × 'é' and 'a' (1025 bytes)"),
                       (b"w" * 1025 + b"\r\n", "1025 × 'w' and \\r\\n")):
        alice.send_raw(data, f"alice sent {what}")
        alice.expect(TOO_LONG)
    alice.send_line("/who")
    alice.expect(online("alice", "bob"))
    alice.send_line("after")
    bob.expect(chat_line("alice", "after"))  # the very next line: nothing relayed before
    zed = chat.connect("zed")
    zed.send_raw(b"z" * 2000 + b"\n", "zed, not joined yet, sent 2000 × 'z'")
    zed.expect(TOO_LONG)
    zed.send_line("zed")
    zed.expect(welcome("zed"))


@check("answers a 100 KB line with one error, and carries on", points=2, phases=BOTH,
       hint=HINT)
def test_huge_line(chat):
    alice, bob = chat.join("alice", "bob")
    alice.send_raw(b"z" * 100_000 + b"\n/who\n", "alice sent 100,000 × 'z', a newline, then "
                                                 "'/who'")
    alice.expect(TOO_LONG)
    alice.expect(online("alice", "bob"))  # once per line, not once per KiB
    alice.send_line("still here")
    bob.expect(chat_line("alice", "still here"))
    chat.no_traceback(chat.server)


@check("says a line is too long without waiting for its end", points=1, phases=BOTH,
       hint=HINT)
def test_too_long_early(chat):
    alice, bob = chat.join("alice", "bob")
    alice.send_raw(b"z" * 100_000, "alice sent 100,000 × 'z' and no newline (yet)")
    alice.expect(TOO_LONG)
    alice.send_raw(b"z" * 100_000 + b"\n/who\n", "alice sent 100,000 more, the newline, "
                                                 "and '/who'")
    alice.expect(online("alice", "bob"))  # no second error for the same line


@check("keeps only about 1 KiB of an unfinished line: a 4 MiB line does not grow the server",
       points=1, phases=BOTH, hint=HINT)
def test_memory_flat(chat):
    server = chat.server
    if not harness.PROC_NET_TCP.exists():
        pytest.skip("measuring memory needs Linux /proc")
    alice, bob = chat.join("alice", "bob")

    def peak_kb():
        return max(harness.proc_status(pid, "VmHWM") or 0
                   for pid in harness.group_pids(server.pid) or [server.pid])

    before = peak_kb()
    size = 4 * 1024 * 1024
    alice.send_raw(b"m" * size + b"\n/who\n", "alice sent 4 MiB of 'm', a newline and '/who'",
                   timeout=5)
    alice.expect(TOO_LONG, timeout=5)
    alice.expect(online("alice", "bob"))
    growth = peak_kb() - before
    chat.step(f"the server's peak memory grew by {growth} kB")
    if growth > 2 * 1024:
        chat.fail("the server's peak memory (VmHWM) grows by less than 2 MiB",
                  f"it grew by {growth / 1024:.1f} MiB: does it keep the whole line?")
