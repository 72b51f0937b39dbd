"""Progress bars: redrawn in place on a terminal, plain milestone lines anywhere else."""
from __future__ import annotations

import io
import re
import threading

from thumbgen.progress import ProgressBoard

CHUNK = 16 * 1024


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def screen(output: str) -> list[str]:
    """What a terminal shows after `output`: the escapes the board uses, applied."""
    lines, row, col = [""], 0, 0
    for token in re.findall(r"\x1b\[\d*[A-Za-z]|\r|\n|[^\x1b\r\n]+", output):
        if token == "\n":
            row, col = row + 1, 0
            if row == len(lines):
                lines.append("")
        elif token == "\r":
            col = 0
        elif token.startswith("\x1b["):
            n, op = int(token[2:-1] or 1), token[-1]
            if op == "A":
                row = max(row - n, 0)
            elif op == "K" and n == 2:
                lines[row] = ""
            else:
                raise AssertionError(f"unexpected escape {token!r}")
        else:
            lines[row] = lines[row][:col] + token + lines[row][col + len(token):]
            col += len(token)
    return [line for line in lines if line]


def send(board: ProgressBoard, index: int, total: int) -> None:
    board.update(index, 0, total)
    for sent in range(CHUNK, total + CHUNK, CHUNK):
        board.update(index, min(sent, total), total)


def test_plain_stream_gets_milestone_lines_and_no_escapes():
    out = io.StringIO()
    board = ProgressBoard(["cat.jpg", "logo.png"], out)
    send(board, 0, 4_600_000)
    send(board, 1, 10_000)  # one chunk: 0 % then 100 %
    board.note(0, "completed")
    board.close()
    assert out.getvalue().splitlines() == [
        "cat.jpg: 0% of 4.6 MB", "cat.jpg: 25% of 4.6 MB", "cat.jpg: 50% of 4.6 MB",
        "cat.jpg: 75% of 4.6 MB", "cat.jpg: 100% of 4.6 MB",
        "logo.png: 0% of 10.0 KB", "logo.png: 100% of 10.0 KB",
    ]
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()


def test_terminal_redraws_one_line_per_file_in_place():
    out = Terminal()
    board = ProgressBoard(["cat.jpg", "logo.png"], out, columns=100)
    send(board, 0, 4_600_000)
    board.update(1, 5_000, 10_000)
    board.note(0, "waiting for thumbnails")
    board.close()
    assert "\x1b[2A" in out.getvalue()  # the cursor goes back up over both bars
    shown = screen(out.getvalue())
    assert len(shown) == 2
    assert shown[0].startswith("cat.jpg ") and "[" + "#" * 24 + "] 100%" in shown[0]
    assert shown[0].endswith("4.6 MB/4.6 MB  waiting for thumbnails")
    assert shown[1].startswith("logo.png") and " 50% " in shown[1] and shown[1].endswith("uploading")


def test_terminal_redraws_only_when_a_percentage_changes():
    out = Terminal()
    board = ProgressBoard(["cat.jpg"], out, columns=100)
    send(board, 0, 11 * 1024 * 1024)  # 705 progress calls
    assert out.getvalue().count("\x1b[2K") == 101  # 0 % … 100 %


def test_terminal_lines_never_wrap():
    out = Terminal()
    names = ["a-very-long-file-name-that-goes-on-and-on.jpeg", "b.png"]
    board = ProgressBoard(names, out, columns=40)
    send(board, 0, 2_000_000)
    board.note(1, "failed: unsupported_media_type")
    shown = screen(out.getvalue())
    assert len(shown) == 2 and all(len(line) < 40 for line in shown)
    assert shown[0].startswith("a-very-long-file-name-that-go…")


def test_updates_from_many_threads_keep_the_screen_whole():
    out = Terminal()
    names = [f"file{i}.jpg" for i in range(4)]
    board = ProgressBoard(names, out, columns=100)
    threads = [threading.Thread(target=send, args=(board, i, 3_000_000)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shown = screen(out.getvalue())
    assert [line.split()[0] for line in shown] == names
    assert all(" 100% " in line for line in shown)
