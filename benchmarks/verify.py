"""Offline verification of an exported audit log with `migex audit verify`.

Exports the cached log (1,000,000 entries; 100,000 with --quick) to JSON Lines with
`service.audit.queries.export_lines`, writes its latest signed checkpoint and the
verifier key, and times `migex audit verify` as a subprocess under `/usr/bin/time -v`
(peak RSS of its largest process), while sampling the summed RSS of its whole
process tree (the verifier forks workers). The same is done for the first tenth of
the log under a checkpoint signed at that size, to show that memory does not grow
with the length of the log.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path

from benchmarks import auditlog, nodes
from benchmarks.figures import Figure, below, print_figure, run_alone
from service.audit import queries, store
from service.db.engine import create_engines

NAME = "verify"
PAGE = os.sysconf("SC_PAGE_SIZE")


def export(log: auditlog.BuiltLog) -> tuple[Path, float | None]:
    """The export file of the whole log (kept), and the export's time if it was made now."""
    path = log.directory / "export.jsonl"
    if path.exists():
        return path, None
    engines = create_engines(log.url)
    started = time.perf_counter()
    partial = path.with_suffix(".partial")
    try:
        with partial.open("wb") as out:
            for line in queries.export_lines(engines.reader, 0, log.size):
                out.write(line)
    finally:
        engines.dispose()
    partial.rename(path)
    return path, time.perf_counter() - started


def head_lines(source: Path, count: int, target: Path) -> None:
    if target.exists():
        return
    with source.open("rb") as src, target.open("wb") as out:
        for n, line in enumerate(src):
            if n == count:
                break
            out.write(line)


def _tree_rss(root: int) -> int:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    tree = {root}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


def timed_verify(
    export_file: Path, note: str, vkey: str, work: Path
) -> tuple[float, float, float, str]:
    """Run the verifier; return (seconds, largest process peak MiB, tree peak MiB, its output)."""
    checkpoint = work / f"checkpoint-{export_file.stem}.txt"
    checkpoint.write_text(note)
    key_file = work / "audit.vkey"
    key_file.write_text(vkey + "\n")
    args = [
        "/usr/bin/time",
        "-v",
        nodes.MIGEX,
        "audit",
        "verify",
        "--export",
        str(export_file),
        "--checkpoint",
        str(checkpoint),
        "--key",
        f"@{key_file}",
    ]
    peak = [0]
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate(timeout=900)
    seconds = time.perf_counter() - started
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"migex audit verify failed:\n{out}\n{err}")
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    largest = int(found.group(1)) / 1024 if found else float("nan")
    return seconds, largest, peak[0] / 2**20, out.strip()


def run(quick: bool = False) -> list[Figure]:
    size = 100_000 if quick else 1_000_000
    small = size // 10
    command = "bash benchmarks/run --only verify" + (" --quick" if quick else "")
    log = auditlog.ensure_log(size)
    figures: list[Figure] = []
    full, export_seconds = export(log)
    if export_seconds is not None:
        figure = Figure(
            NAME,
            f"export of {size:,} entries",
            size / export_seconds,
            "entries/s",
            command,
            note=f"{export_seconds:.1f} s, {full.stat().st_size / 2**20:.0f} MiB",
        )
        print_figure(figure)
        figures.append(figure)
    part = log.directory / f"export-{small}.jsonl"
    head_lines(full, small, part)
    engines = create_engines(log.url)
    try:
        with engines.reader.connect() as conn:
            latest_size, latest_note = auditlog.latest_checkpoint(conn)
            small_note = log.sign(small, store.root_at(conn, small))
    finally:
        engines.dispose()
    if latest_size != size:
        raise RuntimeError(f"latest checkpoint covers {latest_size}, not {size}")
    for count, export_file, note, target in (
        (size, full, latest_note, below(30) if size == 1_000_000 else None),
        (small, part, small_note, None),
    ):
        seconds, largest, tree, out = timed_verify(export_file, note, log.vkey, log.directory)
        label = f"{count // 1000:,}k entries"
        for figure in (
            Figure(NAME, f"verify {label}: time", seconds, "s", command, target, out),
            Figure(NAME, f"verify {label}: peak RSS, largest process", largest, "MiB", command),
            Figure(
                NAME,
                f"verify {label}: peak RSS, all processes",
                tree,
                "MiB",
                command,
                note="sampled every 0.1 s",
            ),
        ):
            print_figure(figure)
            figures.append(figure)
    return figures


if __name__ == "__main__":
    run_alone(__doc__, run)
