"""Text corpora for language modelling: byte-level sequences from OpenWebText (or any hub text
dataset) through ``datasets``, the offline pydoc corpus, or local files. The vocabulary, the task
kind and OpenWebText's Hub id are read from the dataset's record (:mod:`phasezoo.dataset_facts`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from phasezoo.atomic import write_atomic
from phasezoo.data.registry import dataset_name, facts_of, register_dataset
from phasezoo.data.split import Split
from phasezoo.sources import HUB_PREFIX, is_local, source_problem
from phasezoo.tasks import Task


@register_dataset
def text(root: Path, *, source: str = "openwebtext", seq_len: int = 128,
         max_bytes: int = 20_000_000, test_fraction: float = 0.1) -> Split:
    """A byte-level language-modelling corpus cut into sequences of ``seq_len`` next-token pairs.

    Sources: ``openwebtext`` (the hub dataset through ``datasets``, streamed until ``max_bytes``
    of UTF-8 text and cached under ``root``), ``hf:<id>`` (any hub dataset with a ``text`` column),
    ``pydoc`` (the Python reference topics that ship with CPython, ~0.5 MB: real English prose
    and code, offline), or a path under ``root`` (the data root) to a ``.txt`` file or a folder
    of them (:mod:`phasezoo.sources`: relative, no ``..``; the files read are listed in the
    split's info, so the card names them). Tokens are bytes
    (vocabulary 256): no tokenizer download, and the width axis, not a 50k-row embedding, sets a
    small model's size. The last ``test_fraction`` of the sequences (the end of the stream) is the
    test split, so no test sequence overlaps a training one.

    Raises:
        ValueError: if ``test_fraction`` is not in (0, 1), ``seq_len`` or ``max_bytes`` is below
            1, a local source is outside ``root``, or the text is too short for one training
            and one test sequence.
    """
    facts = facts_of(text)
    _check_text_options(seq_len, max_bytes, test_fraction)
    problem = source_problem(source)
    if problem:
        raise ValueError(f"dataset '{facts.name}': option source: {problem}")
    corpus, files = _corpus_bytes(root, source, max_bytes)
    data = np.frombuffer(corpus, dtype=np.uint8)
    n_seq = len(data) // (seq_len + 1)
    n_test = max(1, round(test_fraction * n_seq))
    if n_seq - n_test < 1:
        raise ValueError(f"dataset '{facts.name}' ({source}): {len(data)} bytes make {n_seq} sequences "
                         f"of {seq_len + 1} and test_fraction {test_fraction} takes {n_test} of "
                         "them as test, leaving none to train on (lower seq_len or test_fraction, "
                         "or add text)")
    seqs = torch.from_numpy(data[:n_seq * (seq_len + 1)].astype(np.int64)).view(n_seq, seq_len + 1)
    train, test = seqs[:-n_test], seqs[-n_test:]
    info = {"source": source, "tokenizer": f"bytes (UTF-8), vocabulary {facts.classes}",
            "seq_len": seq_len,
            "bytes": int(len(data)), "split": f"last {n_test} of {n_seq} sequences as test",
            **({"files": files} if files else {})}
    return Split(train[:, :-1], train[:, 1:], test[:, :-1], test[:, 1:], facts.classes, info,
                 Task(facts.task))


def _check_text_options(seq_len: int, max_bytes: int, test_fraction: float) -> None:
    """Reject option values that would give an empty or meaningless split, before any download."""
    name = dataset_name(text)
    if not (isinstance(test_fraction, (int, float)) and 0 < test_fraction < 1):
        raise ValueError(f"dataset '{name}': option test_fraction must be in (0, 1), "
                         f"got {test_fraction!r}")
    for option, value in (("seq_len", seq_len), ("max_bytes", max_bytes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"dataset '{name}': option {option} must be an integer >= 1, "
                             f"got {value!r}")


def _corpus_bytes(root: Path, source: str, max_bytes: int) -> tuple[bytes, list[dict]]:
    """The UTF-8 bytes of a text source, at most ``max_bytes``, and the local files read (none
    for the pydoc topics and hub corpora; see :func:`_local_bytes`)."""
    if source == "pydoc":
        from pydoc_data.topics import topics

        return "\n\n".join(topics[k] for k in sorted(topics)).encode()[:max_bytes], []
    if not is_local(source):
        facts = facts_of(text)  # OpenWebText is the record's source: its Hub id is there
        hub_id = facts.terms.hub_id if source == "openwebtext" else source[len(HUB_PREFIX):]
        cache = root / facts.name / f"{hub_id.replace('/', '__')}-{max_bytes}.bin"
        if not cache.is_file():
            corpus = _stream_hub_text(hub_id, max_bytes)
            write_atomic(cache, lambda tmp: tmp.write_bytes(corpus))
        return cache.read_bytes(), []
    return _local_bytes(root, source, max_bytes)


def _local_bytes(root: Path, source: str, max_bytes: int) -> tuple[bytes, list[dict]]:
    """A local source's text, ``root/source`` (a ``.txt`` file, or a folder's ``.txt`` files in
    name order joined by blank lines), cut at ``max_bytes``, and a record of every file read:
    its path as the config gives it, its size, the bytes read and their SHA-256.

    Why read at most ``max_bytes``, file by file: a corpus is often far larger than the cut
    (reading it whole first took the whole file into memory), and the files past the cut are
    never opened. Why the record: the text ends up in every model's weights, so the card names
    exactly what was trained on.
    """
    path = root / source
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise FileNotFoundError(f"dataset '{dataset_name(text)}': source '{source}' (under "
                                f"data_root {root}) is "
                                "not 'openwebtext', 'pydoc', 'hf:<id>', a .txt file or a folder "
                                "of .txt files")
    out, read = bytearray(), []
    for f in files:
        if read:
            out += b"\n\n"
        if len(out) >= max_bytes:
            break
        with f.open("rb") as stream:
            chunk = stream.read(max_bytes - len(out))
        out += chunk
        read.append({"path": (Path(source) / f.name).as_posix() if path.is_dir() else source,
                     "size": f.stat().st_size, "bytes_read": len(chunk),
                     "sha256": hashlib.sha256(chunk).hexdigest()})
    return bytes(out[:max_bytes]), read


def _stream_hub_text(hub_id: str, max_bytes: int) -> bytes:
    """Stream a hub dataset's ``text`` column until ``max_bytes`` (never the whole corpus)."""
    import datasets

    out, size = [], 0
    for row in datasets.load_dataset(hub_id, split="train", streaming=True):
        doc = row["text"].encode()
        out.append(doc)
        size += len(doc) + 2
        if size >= max_bytes:
            break
    return b"\n\n".join(out)[:max_bytes]
