"""A `kind = "journal"` source in the weekly review: the unit's entries of the review window
(and its baseline weeks, for request volume) are read with journalctl and scanned like a log file
of the unit's own format, one ISO-stamped line per entry; a failed read is reported like an
unreadable file, never raised."""

from __future__ import annotations

import os
import tempfile

from llm_upkeep.journal import entries_as_text, read_journal
from llm_upkeep.review.config import LogSource
from llm_upkeep.review.logscan import DEFAULT_MARKERS, FileStat, LogScanner, SourceVolume


def journal_label(source: LogSource) -> str:
    where = (
        source.journal_dir or ",".join(os.path.basename(f) for f in source.journal_files) or "system journal"
    )
    return f"journal -u {source.unit} ({where})"


def scan_journal(scanner: LogScanner, source: LogSource) -> None:
    w = scanner.window
    got = read_journal(
        source.unit, since=w.baseline_start_s, until=w.end_s, cursor_file=source.cursor_file,
        directory=source.journal_dir, files=source.journal_files, timeout_s=source.timeout_s,
    )  # fmt: skip
    label = journal_label(source)
    if got.error and not got.entries:
        scanner.scan.files.append(FileStat(source.name, label, error=got.error))
        return
    as_file = source.model_copy(update={"kind": source.format, "paths": [label]})
    markers = (
        [m.encode() for m in source.request_markers] if source.request_markers is not None
        else DEFAULT_MARKERS[source.format]
    )  # fmt: skip
    vol = scanner.scan.volume.setdefault(source.name, SourceVolume(source.name, markers)) if markers else None
    with tempfile.TemporaryDirectory(prefix="llm-upkeep-journal-") as d:
        path = os.path.join(d, f"journal-{source.unit}")
        with open(path, "wb") as f:
            f.write(entries_as_text(got.entries))
        os.utime(path, (w.end_s, w.end_s))  # entries are dated; the file's age must not hide them
        stat = scanner.scan_file(as_file, path, vol)
    stat.path = label
    if got.error:
        stat.error = got.error
    _relabel(scanner, path, f"journal-{source.unit}")


def _relabel(scanner: LogScanner, tmp_path: str, label: str) -> None:
    """Evidence names the journal, not the temporary file it was scanned from."""
    sc = scanner.scan
    lists = [r.samples for r in sc.repeats.values()] + [x.samples for x in sc.xids.values()]
    lists += list(sc.hour_samples.values())
    lists += [list(v.samples.values()) for v in sc.volume.values()]
    for lst in lists:
        for ev in lst:
            if ev.file == tmp_path:
                ev.file = label
