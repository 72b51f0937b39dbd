"""Progress of several uploads at once: one bar per file, safe to call from many threads.

On a terminal the bars are redrawn in place (one line per file, the cursor moved up with
ANSI escapes). Anywhere else (a pipe, a file, CI logs) nothing is redrawn: a plain line is
printed when a file passes 0, 25, 50, 75 and 100 %.
"""
from __future__ import annotations

import shutil
import threading
from typing import TextIO

MILESTONES = (0, 25, 50, 75, 100)
BAR_WIDTH = 24


def human_bytes(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    return f"{n / 1e3:.1f} KB" if n < 1_000_000 else f"{n / 1e6:.1f} MB"


class ProgressBoard:
    def __init__(self, names: list[str], stream: TextIO, *, tty: bool | None = None,
                 columns: int | None = None):
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.columns = columns or shutil.get_terminal_size((80, 24)).columns
        self.names = names
        self.name_width = min(max(len(n) for n in names), 30) if names else 0
        self.sent = [0] * len(names)
        self.total = [0] * len(names)
        self.notes = ["queued"] * len(names)
        self._shown_percent = [-1] * len(names)  # what is on screen (TTY) or last printed (plain)
        self._lock = threading.Lock()
        self._drawn = False

    def update(self, index: int, sent: int, total: int) -> None:
        """Bytes of file `index` handed to the connection so far (a progress callback)."""
        with self._lock:
            self.sent[index], self.total[index] = sent, total
            self.notes[index] = "uploading" if sent < total else "uploaded"
            percent = 100 if total <= 0 else sent * 100 // total
            if self.tty:
                if percent != self._shown_percent[index]:
                    self._shown_percent[index] = percent
                    self._redraw()
                return
            passed = max(m for m in MILESTONES if m <= percent)
            if passed > self._shown_percent[index]:
                self._shown_percent[index] = passed
                self.stream.write(f"{self.names[index]}: {passed}% of {human_bytes(total)}\n")
                self.stream.flush()

    def note(self, index: int, text: str) -> None:
        """What file `index` is doing now ("waiting for thumbnails", "completed"): shown on a
        terminal only; elsewhere the final report says it."""
        with self._lock:
            self.notes[index] = text
            if self.tty:
                self._redraw()

    def close(self) -> None:
        with self._lock:
            if self.tty and not self._drawn and self.names:
                self._redraw()

    def line(self, index: int) -> str:
        name = self.names[index]
        if len(name) > self.name_width:
            name = name[: self.name_width - 1] + "…"
        sent, total = self.sent[index], self.total[index]
        percent = 0 if total <= 0 else sent * 100 // total
        filled = BAR_WIDTH * percent // 100
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        size = f"{human_bytes(sent)}/{human_bytes(total)}" if total else ""
        text = f"{name:<{self.name_width}} [{bar}] {percent:3d}% {size:>17}  {self.notes[index]}"
        return text[: max(self.columns - 1, 10)]  # a wrapped line would break the redraw

    def _redraw(self) -> None:
        out = []
        if self._drawn:
            out.append(f"\x1b[{len(self.names)}A")  # back to the first bar's line
        for i in range(len(self.names)):
            out.append(f"\r\x1b[2K{self.line(i)}\n")
        self._drawn = True
        self.stream.write("".join(out))
        self.stream.flush()
