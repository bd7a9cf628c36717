"""Forwards TCP connections from 127.0.0.1:LISTEN to 127.0.0.1:TARGET until killed: a path to a
server that a test can cut (by killing this process) without touching the server.

Usage: tcp_forward.py LISTEN TARGET   (prints "ready" once it listens)
"""

import socket
import sys
import threading

listen, target = int(sys.argv[1]), int(sys.argv[2])


def pump(source, sink):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", listen))
server.listen(64)
print("ready", flush=True)
while True:
    client, _ = server.accept()
    upstream = socket.create_connection(("127.0.0.1", target))
    threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
    threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
