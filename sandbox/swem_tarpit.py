# ruff: noqa: UP024, UP041
"""swe-monkeys' stand-in for the tarpit requests' tests connect to, loaded into the testbed's
Python by a .pth file (sandbox/services.py).

requests' timeout tests (2.4 on) connect to 10.255.255.1, an address that swallows packets, and
expect the connect to time out. With the network on, as the official harness ran, it does. Under
`--network none` there is no route, and connect fails at once with "Network is unreachable", a
ConnectionError, so the tests fail whatever the patch. Adding a route needs NET_ADMIN, which a
sandbox running model-written code does not get. Here connect to that one address waits out the
socket's timeout and then times out, as the silent address would; every other address is
untouched. It must run on every Python an environment has (3.5 on): no f-strings."""

import errno
import socket
import time

TARPIT = "10.255.255.1"
NO_TIMEOUT_WAIT_S = 127.0
"""Linux gives up on an unanswered SYN after about this long (6 retries)."""

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _silent(sock):
    timeout = sock.gettimeout()
    if timeout == 0.0:
        raise BlockingIOError(errno.EINPROGRESS, "Operation now in progress")
    time.sleep(NO_TIMEOUT_WAIT_S if timeout is None else timeout)
    if timeout is None:
        raise OSError(errno.ETIMEDOUT, "Connection timed out")
    raise socket.timeout("timed out")


def _is_tarpit(address):
    return isinstance(address, tuple) and len(address) >= 2 and address[0] == TARPIT


def connect(self, address):
    if _is_tarpit(address):
        return _silent(self)
    return _connect(self, address)


def connect_ex(self, address):
    if _is_tarpit(address):
        try:
            _silent(self)
        except OSError as exc:
            return exc.errno or errno.ETIMEDOUT
    return _connect_ex(self, address)


socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
