"""Framing and the real-clock environment of the emulator's processes (no root needed)."""

from __future__ import annotations

import time

from ciarsim.emulate.peers import ANSWER, MIN_REQUEST, REQUEST, ClockEnv, Frames, frame


def test_frames_have_the_simulated_size_and_reassemble_from_any_split():
    msgs = [frame(REQUEST.pack(i, 1, 1, 0, 0, 66), 40 + 300 * i) for i in range(4)]
    assert [len(m) for m in msgs] == [40, 340, 640, 940]
    assert len(frame(ANSWER.pack(7), 2)) == 8  # never shorter than its header
    stream = b"".join(msgs)
    f = Frames()
    got = []
    for k in range(0, len(stream), 7):
        got += f.feed(stream[k:k + 7])
    assert [REQUEST.unpack_from(b)[0] for b in got] == [0, 1, 2, 3]
    assert MIN_REQUEST == 28


def test_clock_env_chains_timers_on_due_times_not_wake_times():
    env = ClockEnv(time.monotonic())
    fired = []

    def again(ev) -> None:
        fired.append(env.now)
        if len(fired) < 3:
            env.timeout(5.0).callbacks.append(again)

    env.timeout(5.0).callbacks.append(again)
    while len(fired) < 3:
        time.sleep(env.wait_s() or 0.0)
        env.fire_due()
    first = fired[0]
    assert fired == [first, first + 5.0, first + 10.0]  # exact: wake-up delays do not add up
