"""Runs a command with stderr on a pseudo-terminal and stdout to a file; prints what the
terminal received, as bytes escaped by repr(). Used by init_progress.sh.
Usage: progress_tty.py STDOUT_FILE COMMAND [ARGS...]"""
import os
import pty
import subprocess
import sys

master, slave = pty.openpty()
with open(sys.argv[1], "wb") as out:
    p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=out, stderr=slave)
os.close(slave)
got = b""
while True:
    try:
        chunk = os.read(master, 65536)
    except OSError:  # EIO: the child closed its end
        break
    if not chunk:
        break
    got += chunk
rc = p.wait(timeout=300)
sys.stdout.write(repr(got) + "\n")
sys.exit(rc)
