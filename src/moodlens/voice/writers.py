"""Output writers for voice results, keyed by format: table, JSON lines, CSV.

Each writes one input file's result at a time, so a long batch streams. A long
recording's timeline follows its file line (table), sits in its JSON object
(``segments``), or adds one CSV row per segment after the file's row.
"""

from __future__ import annotations

import csv
import json
import sys
from typing import TextIO

from ..results import VoiceResult


class VoiceTableWriter:
    def __init__(self, out: TextIO | None = None, labels: tuple[str, ...] = ()):
        self.out = out or sys.stdout

    def write(self, r: VoiceResult) -> None:
        if r.error:
            self.out.write(f"{r.source}: ERROR {r.error}\n")
        else:
            others = ", ".join(f"{k} {v:.2f}" for k, v in sorted(r.scores.items(), key=lambda kv: -kv[1])[1:3])
            self.out.write(f"{r.source}: {r.label:<9} {r.score:.2f}   ({others})   {r.duration:.1f} s\n")
            for s in r.segments:
                self.out.write(f"  {s.start:7.2f}-{s.end:7.2f} s  {s.label:<9} {s.score:.2f}\n")
        self.out.flush()

    def close(self) -> None:
        pass


class VoiceJsonLinesWriter:
    """One JSON object per input file (segments nested), errors included."""

    def __init__(self, out: TextIO | None = None, labels: tuple[str, ...] = ()):
        self.out = out or sys.stdout

    def write(self, r: VoiceResult) -> None:
        self.out.write(json.dumps(r.to_dict()) + "\n")
        self.out.flush()

    def close(self) -> None:
        pass


class VoiceCsvWriter:
    """One row per file (segment "all") and one per segment of a long recording."""

    def __init__(self, out: TextIO | None = None, labels: tuple[str, ...] = ()):
        self.out = out or sys.stdout
        self.labels = labels
        self.w = csv.writer(self.out, lineterminator="\n")
        self.w.writerow(["source", "segment", "start", "end", "status", "label", "score", *labels, "error"])

    def write(self, r: VoiceResult) -> None:
        if r.error:
            self.w.writerow([r.source, "all", "", "", "error", "", "", *[""] * len(self.labels), r.error])
        else:
            self.w.writerow([r.source, "all", "0.000", f"{r.duration:.3f}", "ok", r.label, f"{r.score:.4f}",
                             *[f"{r.scores.get(l, 0.0):.4f}" for l in self.labels], ""])
            for i, s in enumerate(r.segments):
                self.w.writerow([r.source, i, f"{s.start:.3f}", f"{s.end:.3f}", "ok", s.label, f"{s.score:.4f}",
                                 *[f"{s.scores.get(l, 0.0):.4f}" for l in self.labels], ""])
        self.out.flush()

    def close(self) -> None:
        pass


VOICE_WRITERS = {"table": VoiceTableWriter, "json": VoiceJsonLinesWriter, "csv": VoiceCsvWriter}


def make_voice_writer(fmt: str, labels: tuple[str, ...], out: TextIO | None = None):
    if fmt not in VOICE_WRITERS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(VOICE_WRITERS)}")
    return VOICE_WRITERS[fmt](out, labels)
