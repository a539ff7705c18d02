"""The command line, in every phase: ports, and what a client says when things go wrong."""

import re

from tests.grading import CLIENT, DISCONNECTED, check

ALL = (1, 2, 3, 4)


@check("prints 'Listening on 127.0.0.1:PORT' with the port it really got from --port 0",
       points=1, phases=ALL, hint="protocol.md#command-line-every-phase")
def test_prints_real_port(chat):
    server = chat.server
    if server.printed_host != "127.0.0.1":
        chat.fail("'Listening on 127.0.0.1:PORT' for --host 127.0.0.1",
                  f"'Listening on {server.printed_host}:{server.port}'")
    chat.probe(server, "alice")


@check("flushes its 'Listening on' line, so that a program reading its output sees it at once",
       points=1, phases=ALL, hint="protocol.md#command-line-every-phase")
def test_listening_line_is_flushed(chat):
    # The other checks run Python programs with PYTHONUNBUFFERED=1, which forgives a
    # missing flush; this one turns it off, as a shell pipe or a process manager would.
    server = chat.start_server(env={"PYTHONUNBUFFERED": ""})
    chat.probe(server, "alice")


@check("two servers started at once with --port 0 get different ports, and both answer",
       points=1, phases=ALL, hint="protocol.md#command-line-every-phase")
def test_two_servers_two_ports(chat):
    first, second = chat.start_servers(2)
    if first.port == second.port:
        chat.fail("two different ports", f"both printed port {first.port}: is --port ignored?")
    chat.probe(first, "alice")
    chat.probe(second, "bob")


@check("the client prints 'Could not connect to HOST:PORT: REASON' and exits with status 1 "
       "when no server listens", points=1, phases=ALL, program=CLIENT,
       hint="protocol.md#clients-in-every-phase")
def test_client_without_server(chat):
    port = chat.refusing_port().port
    chat.step(f"port {port} refuses connections (no server there)")
    client = chat.start_client(port)
    client.expect_output(re.compile(rf"Could not connect to 127\.0\.0\.1:{port}: .+"))
    status = client.wait_exit()
    if status != 1:
        chat.fail("exit status 1", f"exit status {status}")
    chat.no_traceback(client)


@check("the client prints 'Disconnected from server' and exits with status 1 when the server "
       "closes the connection", points=1, phases=ALL, program=CLIENT,
       hint="protocol.md#clients-in-every-phase")
def test_client_server_goes_away(chat):
    fake = chat.fake_server()
    client = chat.start_client(fake.port)
    server_side = fake.accept()
    client.type("hello")
    server_side.expect("hello")
    server_side.close()
    client.expect_output(DISCONNECTED)
    status = client.wait_exit()
    if status != 1:
        chat.fail("exit status 1", f"exit status {status}")
    chat.no_traceback(client)


@check("the client exits with status 0 on quit or exit (/quit from phase 3) and at the end of "
       "its input, printing nothing more than the server's goodbye",
       points=2, phases=ALL, program=CLIENT, hint="protocol.md#clients-in-every-phase")
def test_client_leaves(chat):
    ways = ["quit", "exit", None] if chat.phase <= 2 else ["/quit", None]
    for how in ways:
        client, server_side = chat.client_session()
        chat.client_leaves(client, server_side, how)
