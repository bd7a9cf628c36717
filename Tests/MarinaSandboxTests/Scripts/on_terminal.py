"""Runs a program on a pseudo-terminal (its standard input and output are a terminal), answers
its first [y/N] question with ANSWER, and prints {"status", "output"} as JSON.

Usage: on_terminal.py ANSWER PROGRAM [ARGUMENT...]   (ANSWER "-" closes the input instead)
"""

import json
import os
import pty
import select
import sys
import time

answer, program = sys.argv[1], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(program[0], program)

output = b""
answered = False
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    ready, _, _ = select.select([fd], [], [], 0.5)
    if ready:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    if not answered and b"[y/N]" in output:
        answered = True
        if answer == "-":
            os.write(fd, b"\x04")  # end of input on a terminal
        else:
            os.write(fd, answer.encode() + b"\n")
if time.monotonic() >= deadline:
    os.kill(pid, 9)  # hung: killed, so that the test fails instead of waiting forever
_, status = os.waitpid(pid, 0)
print(json.dumps({"status": os.waitstatus_to_exitcode(status), "output": output.decode("utf-8", "replace")}))
