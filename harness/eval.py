"""`harness eval`: k samples for every issue of a dataset, each distinct patch verified once.

Generation (async, a few issues at a time) and verification (a pool of containers) overlap:
each issue's distinct patches go to the verifiers as soon as its samples exist, and at most
`verify_workers * 2` verifications wait at once, so memory stays flat at 300 x 250. Every
record is appended and fsynced as it is made; `resume` skips samples and verdicts already on
disk, so an interrupted run ends with the same records as one that never stopped.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from harness.errors import UserError
from harness.protocols import PatchAgent
from harness.store import RunStore
from harness.types import Candidate, Instance, SamplingConfig, Verdict


class VerdictCache:
    """Verdicts by (instance, normalised patch, image, network), shared by all runs: the same
    patch in the same environment is never tested twice."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, instance_id: str, patch_sha: str, image: str, network: str) -> Path:
        key = hashlib.sha256(f"{instance_id}\0{patch_sha}\0{image}\0{network}".encode()).hexdigest()
        return self.root / key[:2] / f"{key}.json"

    def get(self, instance_id, patch_sha, image, network) -> Verdict | None:
        path = self._path(instance_id, patch_sha, image, network)
        if not path.exists():
            return None
        try:
            return Verdict.from_dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError, ValueError):
            return None

    def put(self, verdict: Verdict, image: str) -> None:
        if verdict.status.value == "error":  # infrastructure failures are worth retrying
            return
        path = self._path(verdict.instance_id, verdict.patch_sha, image, verdict.network)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(verdict.to_dict(), sort_keys=True))
        tmp.replace(path)


class Evaluation:
    def __init__(
        self,
        store: RunStore,
        instances: list[Instance],
        samples: int,
        sampling: SamplingConfig,
        agent: PatchAgent | None,
        checkout: Callable[[Instance, Path], Path],
        verify: Callable[[Instance, str], Verdict] | None,
        image_name: Callable[[Instance], str],
        network: str,
        cache: VerdictCache | None,
        gen_concurrency: int = 2,
        verify_workers: int = 2,
        on_event: Callable[[str, dict], None] | None = None,
        on_interrupt: Callable[[], None] | None = None,
    ) -> None:
        self.store, self.instances, self.samples, self.sampling = (
            store,
            instances,
            samples,
            sampling,
        )
        self.agent, self.checkout, self.verify = agent, checkout, verify
        self.image_name, self.network, self.cache = image_name, network, cache
        self.gen_concurrency, self.verify_workers = gen_concurrency, verify_workers
        self.on_event = on_event or (lambda kind, data: None)
        self.on_interrupt = on_interrupt or (lambda: None)
        """Called on Ctrl-C before waiting for running verifications: it must end them (kill
        the run's containers), or the wait would last as long as the slowest test suite."""
        self.stopping = False
        self._queued: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def run(self, imported: list[Candidate] | None = None) -> None:
        done = {(v.instance_id, v.patch_sha) for v in self.store.verdicts()}
        self._queued = set(done)
        by_id = {i.instance_id: i for i in self.instances}
        slots = threading.BoundedSemaphore(self.verify_workers * 2)
        futures: list = []
        with ThreadPoolExecutor(max_workers=self.verify_workers) as pool:

            def submit(candidates: list[Candidate]) -> None:
                for c in candidates:
                    key = (c.instance_id, c.patch_sha)
                    with self._lock:
                        if self.verify is None or c.patch_sha is None or key in self._queued:
                            continue
                        self._queued.add(key)
                    self.on_event("queued", {"instance_id": c.instance_id, "sha": c.patch_sha})
                    slots.acquire()
                    future = pool.submit(self._verify_one, by_id[c.instance_id], c)
                    future.add_done_callback(lambda _f: slots.release())
                    futures.append(future)

            try:
                self._produce(submit, imported)
            except KeyboardInterrupt:
                self.stopping = True
                for future in futures:
                    future.cancel()
                self.on_interrupt()
                raise
        for future in futures:
            future.result()  # a verifier bug must surface, not vanish in a worker thread

    def _produce(self, submit, imported: list[Candidate] | None) -> None:
        existing = self.store.candidates()
        submit(existing)  # candidates of an interrupted run that were never verified
        if imported is None:
            asyncio.run(self._generate_all(existing, submit))
            return
        recorded = {(e.instance_id, e.sample_index) for e in existing}
        new = [c for c in imported if (c.instance_id, c.sample_index) not in recorded]
        for c in new:
            self.store.append_candidate(c)
        self.on_event("generated", {"instance_id": None, "candidates": new})
        submit(new)

    def _verify_one(self, instance: Instance, candidate: Candidate) -> Verdict | None:
        image, sha = self.image_name(instance), candidate.patch_sha
        cache = self.cache
        verdict = cache.get(instance.instance_id, sha, image, self.network) if cache else None
        cached = verdict is not None
        if verdict is None:
            self.on_event("verify_start", {"instance_id": instance.instance_id})
            verdict = self.verify(instance, candidate.patch)
            if self.stopping:  # killed by the interrupt: not a verdict on the patch
                return None
            if cache:
                cache.put(verdict, image)
        self.store.append_verdict(verdict)
        self.on_event("verdict", {"verdict": verdict, "cached": cached})
        return verdict

    async def _generate_all(self, existing: list[Candidate], submit) -> None:
        have: dict[str, set[int]] = {}
        for c in existing:
            have.setdefault(c.instance_id, set()).add(c.sample_index)
        gate = asyncio.Semaphore(self.gen_concurrency)
        start = time.monotonic()

        async def one(instance: Instance) -> None:
            missing = sorted(set(range(self.samples)) - have.get(instance.instance_id, set()))
            if not missing:
                return
            async with gate:
                self.on_event("generating", {"instance_id": instance.instance_id})
                candidates = await self._generate(instance, missing)
            await asyncio.to_thread(submit, candidates)

        await asyncio.gather(*(one(i) for i in self.instances))
        self.store.append_timing({"generation_wall_s": round(time.monotonic() - start, 3)})

    async def _generate(self, instance: Instance, missing: list[int]) -> list[Candidate]:
        """The missing samples of one issue; sample i is asked for with seed base + i, so a
        resumed issue asks for the same samples an uninterrupted run would have."""
        seed = None if self.sampling.seed is None else self.sampling.seed + missing[0]
        with tempfile.TemporaryDirectory(prefix="swem-eval-", ignore_cleanup_errors=True) as tmp:
            worktree = Path(tmp) / "repo"
            if getattr(self.agent, "needs_worktree", True):
                await asyncio.to_thread(self.checkout, instance, worktree)
            generation = await self.agent.generate(
                instance, worktree, len(missing), replace(self.sampling, seed=seed)
            )
        for completion in generation.overhead:
            self.store.append_overhead(instance.instance_id, "localize", completion)
        candidates = [
            replace(c, sample_index=index)
            for c, index in zip(generation.candidates, missing, strict=True)
        ]
        for data, index in zip(generation.trajectories, missing, strict=False):
            self.store.write_trajectory(
                instance.instance_id, index, {**data, "sample_index": index}
            )
        for c in candidates:
            self.store.append_candidate(c)
        self.on_event("generated", {"instance_id": instance.instance_id, "candidates": candidates})
        return candidates


def check_resumable(store: RunStore, identity: dict, resume: bool) -> dict | None:
    """The existing manifest when resuming is allowed; a one-line UserError otherwise."""
    existing = store.manifest()
    if existing is None:
        if resume:
            raise UserError(f"nothing to resume in {store.run_dir}: drop --resume to start it")
        return None
    if not resume:
        raise UserError(
            f"run {store.run_dir} exists: pass --resume to continue it, or choose another --run-id"
        )
    before = existing.get("identity", {})
    changed = sorted(k for k in set(before) | set(identity) if before.get(k) != identity.get(k))
    if changed:
        raise UserError(
            f"run {store.run_dir} was made with a different configuration or "
            f"version ({', '.join(changed)}): start a new --run-id"
        )
    return existing
