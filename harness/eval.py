"""`harness eval`: k samples for every issue of a dataset, each distinct patch verified once.

Generation (async, a few issues at a time) and verification (a pool of containers) overlap:
each issue's distinct patches go to the verifiers as soon as its samples exist, and at most
`verify_workers * 2` verifications wait at once, so memory stays flat at 300 x 250. Every
record is appended and fsynced as it is made; `resume` skips samples and verdicts already on
disk, so an interrupted run ends with the same records as one that never stopped.

Infrastructure failure is its own outcome on both sides: a sample the model server never
answered (Candidate.missing) and a verification the sandbox never finished (an `error`
verdict) are retried with backoff, again on `--resume`, and never count as failures.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from harness.config import RetryPolicy
from harness.errors import UserError
from harness.protocols import PatchAgent
from harness.store import RunStore, StoreWriteError
from harness.types import Candidate, Instance, SamplingConfig, Verdict
from harness.verdict_cache import VerdictCache, copy_artifacts


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
        cache_key: Callable[[Instance, str], dict | None],
        cache: VerdictCache | None,
        gen_concurrency: int = 2,
        verify_workers: int = 2,
        on_event: Callable[[str, dict], None] | None = None,
        on_interrupt: Callable[[], None] | None = None,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        self.store, self.instances, self.samples, self.sampling = (
            store,
            instances,
            samples,
            sampling,
        )
        self.agent, self.checkout, self.verify = agent, checkout, verify
        self.cache_key, self.cache = cache_key, cache
        self.gen_concurrency, self.verify_workers = gen_concurrency, verify_workers
        self.on_event = on_event or (lambda kind, data: None)
        self.on_interrupt = on_interrupt or (lambda: None)
        """Ends the run's sandboxes (kills its containers): called on Ctrl-C or a fatal error
        before waiting for the verifications in flight, and once more after."""
        self.retry = retry
        self.stopping = False
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._queued: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def run(self, imported: list[Candidate] | None = None) -> None:
        final = self.store.final_verdicts()
        self._queued = {key for key, v in final.items() if v.decided}
        by_id = {i.instance_id: i for i in self.instances}
        slots = threading.BoundedSemaphore(self.verify_workers * 2)
        futures: list = []
        pool = ThreadPoolExecutor(max_workers=self.verify_workers)

        def submit(candidates: list[Candidate]) -> None:
            for c in candidates:
                if self._failure is not None:
                    raise self._failure
                key = (c.instance_id, c.patch_sha)
                with self._lock:
                    if self.verify is None or c.patch_sha is None or key in self._queued:
                        continue
                    self._queued.add(key)
                self.on_event("queued", {"instance_id": c.instance_id, "sha": c.patch_sha})
                while not slots.acquire(timeout=0.5):  # the run may stop while we wait
                    if self._stop.is_set():
                        return
                future = pool.submit(self._verify_guarded, by_id[c.instance_id], c)
                future.add_done_callback(lambda _f: slots.release())
                futures.append(future)

        try:
            self._produce(submit, imported)
            for future in futures:
                future.result()  # a verifier bug must surface, not vanish in a worker thread
        except BaseException:
            self._abort(futures, pool)
            raise
        pool.shutdown(wait=True)

    def _abort(self, futures: list, pool: ThreadPoolExecutor) -> None:
        """Ctrl-C or a fatal error at any moment, the wait on running verifications included:
        kill the run's sandboxes, let the workers notice, and sweep again for any sandbox a
        worker was starting while the first sweep ran."""
        self.stopping = True
        self._stop.set()
        for future in futures:
            future.cancel()
        try:
            self.on_interrupt()
            pool.shutdown(wait=True, cancel_futures=True)
        finally:
            self.on_interrupt()

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
            self.on_event("generated", {"instance_id": c.instance_id, "candidates": [c]})
            submit([c])  # verification starts while the rest is still being recorded

    def _verify_guarded(self, instance: Instance, candidate: Candidate) -> Verdict | None:
        try:
            return self._verify_one(instance, candidate)
        except StoreWriteError as exc:  # the disk is full: stop the run, say it once
            self._failure = exc
            self._stop.set()
            raise

    def _verify_one(self, instance: Instance, candidate: Candidate) -> Verdict | None:
        sha = candidate.patch_sha
        key = self.cache_key(instance, sha) if self.cache else None
        hit = self.cache.get(key) if self.cache else None
        if hit is not None:
            verdict = self._from_cache(*hit)
        else:
            verdict = self._verify_with_retries(instance, candidate)
            if verdict is None:
                return None
            if self.cache and verdict.decided:
                # no key before: the image did not exist until this verification built it
                key = key or self.cache_key(instance, sha)
                folder = self.store.run_dir / verdict.artifacts if verdict.artifacts else None
                self.cache.put(key, verdict, folder)
        self.store.append_verdict(verdict)
        self.on_event("verdict", {"verdict": verdict, "cached": hit is not None})
        return verdict

    def _verify_with_retries(self, instance: Instance, candidate: Candidate) -> Verdict | None:
        """None when the run is stopping: a verification cut short is no verdict on the patch."""
        verdict = None
        for attempt in self.retry.tries:
            if attempt > 1:
                self.on_event(
                    "retry",
                    {"instance_id": instance.instance_id, "reason": verdict.reason, "n": attempt},
                )
                if self._stop.wait(self.retry.delay(attempt - 1)):
                    return None
            self.on_event("verify_start", {"instance_id": instance.instance_id})
            verdict = self.verify(instance, candidate.patch)
            if self.stopping:
                return None
            verdict.attempts = attempt
            if verdict.decided or attempt == self.retry.tries[-1]:
                break
            self.on_event("verify_failed", {"instance_id": instance.instance_id})
        return verdict

    def _from_cache(self, verdict: Verdict, source: Path) -> Verdict:
        folder = self.store.artifact_dir(verdict.instance_id, verdict.patch_sha)
        copy_artifacts(source, folder)
        verdict.cached = True
        verdict.artifacts = self.store.relative(folder)
        log = folder / "test_output.txt"
        verdict.log_path = self.store.relative(log) if log.exists() else None
        (folder / "verdict.json").write_text(json.dumps(verdict.to_dict(), indent=2))
        return verdict

    async def _generate_all(self, existing: list[Candidate], submit) -> None:
        have: dict[str, set[int]] = {}
        for c in existing:
            if not c.missing:
                have.setdefault(c.instance_id, set()).add(c.sample_index)
        gate = asyncio.Semaphore(self.gen_concurrency)
        start = time.monotonic()

        async def one(instance: Instance) -> None:
            missing = sorted(set(range(self.samples)) - have.get(instance.instance_id, set()))
            for attempt in self.retry.tries:
                if not missing:
                    return
                if attempt > 1:  # the model server failed these: wait, then ask again
                    await asyncio.sleep(self.retry.delay(attempt - 1))
                async with gate:
                    self.on_event("generating", {"instance_id": instance.instance_id})
                    candidates = await self._generate(instance, missing)
                await asyncio.to_thread(submit, candidates)
                missing = [c.sample_index for c in candidates if c.missing]

        try:
            await asyncio.gather(*(one(i) for i in self.instances))
        except asyncio.CancelledError:  # Ctrl-C: release a submit thread waiting for a slot
            self._stop.set()
            raise
        finally:
            self.store.append_timing({"generation_wall_s": round(time.monotonic() - start, 3)})

    async def _generate(self, instance: Instance, missing: list[int]) -> list[Candidate]:
        """The missing samples of one issue; sample i is asked for with seed base + i, so a
        resumed issue asks for the same samples an uninterrupted run would have."""
        with tempfile.TemporaryDirectory(prefix="swem-eval-", ignore_cleanup_errors=True) as tmp:
            worktree = Path(tmp) / "repo"
            if getattr(self.agent, "needs_worktree", True):
                await asyncio.to_thread(self.checkout, instance, worktree)
            generation = await self.agent.generate(
                instance, worktree, len(missing), self.sampling, indices=missing
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
        self.store.append_candidates(candidates)
        self.on_event("generated", {"instance_id": instance.instance_id, "candidates": candidates})
        return candidates


def check_resumable(store: RunStore, identity: dict, resume: bool) -> dict | None:
    """The existing manifest when resuming is allowed; a one-line UserError otherwise. A run
    directory that holds no record yet (a command that failed before its first sample) is
    started afresh, so a failed start never blocks its own run id."""
    existing = store.manifest()
    if existing is not None and not store.has_records() and not resume:
        return None
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
