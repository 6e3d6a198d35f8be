"""Put a published zoo on the Hugging Face Hub: ``phasezoo push ZOO --repo OWNER/NAME``.

What is pushed is the verified zoo, byte for byte, except its card's Loading section, which
names the repository instead of the local folder (:func:`phasezoo.hub_card.with_loading_source`),
and ``SHA256SUMS``, whose card line is that card's digest. The local zoo is not touched (its own
checksums stay valid), and the pushed repository verifies as the zoo did
(:func:`phasezoo.verify.verified_zoo` downloads and verifies a hub id).

The order keeps the repository a valid zoo at every commit, and an interrupted push resumable:

1. ``create_repo`` (a dataset repository; ``--private`` applies when it is created) and, for a
   ``--revision``, ``create_branch`` — both no-ops when they exist;
2. ``upload_folder`` of the shards only (``allow_patterns``: their exact names). With
   ``hf_xet`` (a dependency of ``huggingface_hub``) this is the library's streamed upload: large
   folders committed in several batches, and rerunning the same call resumes it (committed
   files are skipped, uploaded chunks deduplicated). No card points at these shards yet;
3. one commit with the card, ``SHA256SUMS`` and ``splits.json`` (every other listed file),
   deleting every remote file the zoo does not list (shards of an earlier build): the zoo
   switches over in one commit.

A push interrupted in step 2 leaves the earlier card (or none) in place; rerun the same command.
The operations are sent through :class:`huggingface_hub.HfApi` (its token: ``hf auth login`` or
``HF_TOKEN``); nothing here reads or stores a credential.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from phasezoo.hub_card import with_loading_source

REPO_TYPE = "dataset"
CARD, SUMS = "README.md", "SHA256SUMS"


@dataclass(frozen=True)
class PushPlan:
    """What :func:`push` sends: the shards (uploaded from the zoo folder), and the card,
    checksums and splits written in the final commit."""

    zoo_dir: Path
    repo_id: str
    shards: list[str]  # data/<cell>-<digest>.h5, as SHA256SUMS lists them
    card: bytes  # README.md with the repository's Loading section
    sums: bytes  # SHA256SUMS with that card's digest
    files: frozenset[str]  # every file the pushed repository holds (besides hidden ones)


def check_repo_id(repo_id: str) -> str:
    """``repo_id`` if it names a Hub repository ``owner/name`` (the form ``phasezoo verify`` and
    the readers take for a hub id), checked offline by ``huggingface_hub``'s own rules.

    Raises:
        ValueError: naming the id and the rule it breaks.
    """
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise ValueError(f"--repo {repo_id!r}: not a Hub repository id ({e})") from None
    if repo_id.count("/") != 1:
        raise ValueError(f"--repo {repo_id!r}: give the owner too, 'owner/name' (a user or an "
                         "organization)")
    return repo_id


def plan_push(zoo_dir: str | Path, repo_id: str) -> PushPlan:
    """Verify the zoo and prepare what :func:`push` sends, without touching the network.

    Raises:
        phasezoo.verify.VerifyError: naming the first file of the zoo that does not verify.
        ValueError: for a repository id that is not ``owner/name``.
    """
    from phasezoo.verify import verify

    repo_id, zoo_dir = check_repo_id(repo_id), Path(zoo_dir)
    verify(zoo_dir)
    listed = [line.split("  ", 1) for line in (zoo_dir / SUMS).read_text().splitlines()]
    card = with_loading_source((zoo_dir / CARD).read_text(encoding="utf-8"),
                               repo_id).encode("utf-8")
    digest = hashlib.sha256(card).hexdigest()
    sums = "".join(f"{digest if name == CARD else d}  {name}\n" for d, name in listed)
    names = [name for _, name in listed]
    return PushPlan(zoo_dir, repo_id, [n for n in names if n.startswith("data/")], card,
                    sums.encode(), frozenset([*names, SUMS]))


def push(zoo_dir: str | Path, repo_id: str, revision: str | None = None,
         private: bool = False, api: Any = None,
         say: Callable[[str], None] = print) -> str:
    """Push a verified zoo to the dataset repository ``repo_id`` (see the module for the order
    of operations and how a push resumes); returns the final commit's URL.

    ``revision``: a branch, created from ``main`` when missing (default: ``main``).
    ``api``: the :class:`huggingface_hub.HfApi` to send through (tests pass a recorder).

    Raises:
        phasezoo.verify.VerifyError: the zoo does not verify; nothing is sent.
        ValueError: the repository id is not ``owner/name``; nothing is sent.
        PushError: the Hub refused an operation or the connection was lost (rerun to resume).
    """
    from huggingface_hub import HfApi

    plan = plan_push(zoo_dir, repo_id)
    api = api or HfApi()
    try:
        return _send(plan, api, revision, private, say)
    except OSError as e:  # huggingface_hub's HTTP errors and lost connections are OSErrors
        raise PushError(f"{repo_id}: push stopped ({type(e).__name__}: "
                        f"{' '.join(str(e).split())[:300]}); the repository keeps its earlier "
                        "card; rerun the same command to resume") from e


class PushError(ValueError):
    """A push the Hub or the network stopped; the message names the repository and says that
    rerunning resumes it."""


def _send(plan: PushPlan, api: Any, revision: str | None, private: bool,
          say: Callable[[str], None]) -> str:
    """The operations of :func:`push`, in its order; returns the final commit's URL."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    repo_id = plan.repo_id
    branch = revision if revision not in (None, "main") else None
    api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
    if branch:
        api.create_branch(repo_id, branch=branch, repo_type=REPO_TYPE, exist_ok=True)
    say(f"{repo_id}: uploading {len(plan.shards)} shards (rerun to resume if interrupted)")
    api.upload_folder(repo_id=repo_id, folder_path=str(plan.zoo_dir), repo_type=REPO_TYPE,
                      revision=branch, allow_patterns=plan.shards,
                      commit_message=f"phasezoo push: shards of {plan.zoo_dir.name}")
    remote = api.list_repo_files(repo_id, repo_type=REPO_TYPE, revision=branch)
    stale = sorted(f for f in remote if f not in plan.files and not _hidden(f))
    operations = [CommitOperationAdd(CARD, plan.card), CommitOperationAdd(SUMS, plan.sums),
                  *[CommitOperationAdd(name, str(plan.zoo_dir / name))  # splits.json
                    for name in sorted(plan.files - {CARD, SUMS, *plan.shards})],
                  *[CommitOperationDelete(f) for f in stale]]
    info = api.create_commit(repo_id, operations=operations, repo_type=REPO_TYPE,
                             revision=branch,
                             commit_message=f"phasezoo push: card, checksums and splits of "
                                            f"{plan.zoo_dir.name}"
                                            + (f"; {len(stale)} stale files removed"
                                               if stale else ""))
    url = getattr(info, "commit_url", None) or f"https://huggingface.co/datasets/{repo_id}"
    say(f"{repo_id}: pushed {len(plan.files)} files ({len(stale)} stale removed): {url}")
    return str(url)


def _hidden(name: str) -> bool:
    """Whether a repository path is hidden (``.gitattributes``): not part of a zoo, kept."""
    return any(part.startswith(".") for part in name.split("/"))
