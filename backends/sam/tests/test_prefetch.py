"""Background embedding: a bounded queue, newest first, paused while annotators click."""

from __future__ import annotations

import threading

import numpy as np

from prelabel_sam.model import load_sam
from prelabel_sam.prefetch import Job, Prefetcher, Priority


def jobs(*names: str) -> list[Job]:
    return [Job(name, name) for name in names]


class Recorder:
    """A prefetch worker that records jobs; waits on ``gate`` while it is cleared."""

    def __init__(self) -> None:
        self.done: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()

    def __call__(self, job: Job) -> None:
        self.started.set()
        self.gate.wait(5)
        if job.payload == "broken":
            raise OSError("cannot read")
        self.done.append(job.payload)


def test_the_newest_request_goes_first_and_the_queue_is_bounded():
    work = Recorder()
    work.gate.clear()
    prefetcher = Prefetcher(work, limit=4)
    try:
        prefetcher.submit(jobs("busy"))
        assert work.started.wait(5)  # the thread holds "busy"; the rest wait in the queue
        prefetcher.submit(jobs("a1", "a2", "a3"))
        assert prefetcher.submit(jobs("b1", "b2", "a2")) == 4  # a2 moves up with b; a3 dropped
        work.gate.set()
        assert prefetcher.wait_idle(10)
        assert work.done == ["busy", "b1", "b2", "a2", "a1"]
    finally:
        prefetcher.close()


def test_a_failing_job_does_not_stop_the_others(caplog):
    work = Recorder()
    prefetcher = Prefetcher(work, limit=8)
    try:
        prefetcher.submit(jobs("broken", "fine"))
        assert prefetcher.wait_idle(10)
        assert work.done == ["fine"]
        assert "prefetch of broken failed" in caplog.text
    finally:
        prefetcher.close()


def test_a_zero_limit_turns_prefetch_off():
    work = Recorder()
    prefetcher = Prefetcher(work, limit=0)
    assert prefetcher.submit(jobs("a")) == 0
    assert prefetcher.wait_idle(1) and work.done == []
    prefetcher.close()


def test_background_work_waits_while_an_interactive_request_runs():
    priority = Priority()
    passed = threading.Event()
    urgent = threading.Event()

    def background() -> None:
        with priority.background(urgent.is_set):
            passed.set()

    with priority.interactive():
        thread = threading.Thread(target=background)
        thread.start()
        assert not passed.wait(0.3)  # paused before it starts
    assert passed.wait(5)
    thread.join()

    passed.clear()
    with priority.interactive():
        thread = threading.Thread(target=background)
        thread.start()
        assert not passed.wait(0.3)
        urgent.set()  # an interactive request now waits for this very work
        priority.wake()
        assert passed.wait(5)
    thread.join()
    priority.checkpoint()  # outside background work: never waits


def test_an_encoding_under_way_pauses_at_the_next_encoder_block(model_dir):
    """A click arriving mid-encoding gets the CPU: the encoder holds at its next block."""
    priority = Priority()
    entered, release, done = threading.Event(), threading.Event(), threading.Event()
    blocks: list[int] = []

    def click() -> None:
        with priority.interactive():
            entered.set()
            release.wait(10)

    clicker = threading.Thread(target=click)

    def on_block() -> None:
        blocks.append(len(blocks))
        if len(blocks) == 2:  # block 0 has run: the annotator clicks now
            clicker.start()
            assert entered.wait(5)
        priority.checkpoint()

    model = load_sam(str(model_dir / "tiny.pth"), "cpu", on_block)

    def background() -> None:
        with priority.background(lambda: False):
            model.embed(np.zeros((64, 96, 3), np.uint8))
        done.set()

    worker = threading.Thread(target=background)
    worker.start()
    assert entered.wait(30)
    assert not done.wait(0.5)
    assert blocks == [0, 1]  # held before block 1 while the click runs
    release.set()
    assert done.wait(30)
    worker.join()
    clicker.join()
    assert blocks == [0, 1] and model.architecture.depth == 2
