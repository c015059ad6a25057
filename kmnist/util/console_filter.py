"""The quiet console's filter process: stdin to stdout, less the lines that match.

    python -m kmnist.util.console_filter QUIET NO_DRIVER CUINIT_FAILED IDLE_SECONDS

kmnist.util.console starts it with the command's fd 2 as its stdin. It drops the lines that match
QUIET whole, and those that match CUINIT_FAILED once a line matching NO_DRIVER has said there is no
GPU driver; every other byte goes out as it comes (a line without its end after IDLE_SECONDS). It
imports the standard library alone, so it starts in milliseconds, and it ignores Ctrl-C: the
command handles that, and the filter drains the pipe until the command's last line.
"""

import os
import re
import select
import signal
import sys


def write_all(data: bytes) -> None:
  while data:
    data = data[os.write(1, data) :]


def main(argv: list[str]) -> None:
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  quiet, no_driver, cuinit = (re.compile(pattern.encode()) for pattern in argv[1:4])
  idle, seen_no_driver, pending = float(argv[4]), False, b""

  def decide(line: bytes) -> None:
    nonlocal seen_no_driver
    text = line.rstrip(b"\r\n")
    seen_no_driver = seen_no_driver or bool(no_driver.fullmatch(text))
    if not (quiet.fullmatch(text) or (seen_no_driver and cuinit.fullmatch(text))):
      write_all(line)

  while True:
    if pending and not select.select([0], [], [], idle)[0]:
      write_all(pending)  # no end of line came: show what there is
      pending = b""
      continue
    chunk = os.read(0, 65536)
    if not chunk:
      break
    lines = re.split(rb"(?<=\n)", pending + chunk)
    pending = lines.pop()
    for line in lines:
      decide(line)
  write_all(pending)


if __name__ == "__main__":
  main(sys.argv)
