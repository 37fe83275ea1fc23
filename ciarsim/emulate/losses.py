"""Where the relay's losses fell, and how the kernel recovered from each.

The relay logs every TCP segment with payload it forwards or drops during a replay block (its
stream offset from the connection's SYN, ``ciarsim.emulate.relay.PACKET_COLUMNS``); the peers
list their messages in stream order (exchange id, bytes). Together they place each dropped
segment in the application message it belonged to (the message holding its first byte) and time
the sender's repair: the next transmission covering that byte, as the relay saw it. This gives

- ``losses``: one row per dropped data segment (which message, which attempt, how long until it
  was resent): the kernel's actual loss recovery, next to the simulator's rule
  (``ciarsim.sim.tcp.loss_wait_ms``);
- ``loss_script``: per block and direction, the lost transmissions of each message in send order
  (positions of lost first transmissions, count of lost resends), which the simulator can
  replay instead of drawing its own (``Link.script``), so that
  the simulator and the emulator are compared under the same losses and the comparison is not
  swamped by which messages each happened to lose.

Pure ACKs are not data: their drops are counted (``streams``) but placed nowhere. Units: ms,
bytes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ciarsim.emulate.relay import PACKET_COLUMNS

DIRECTIONS = ("uplink", "downlink")
BURST_MS = 2.0  # segments this close to a message's first were sent back to back (the relay's clock)
LOSS_COLUMNS = ("block", "direction", "message", "exchange", "message_bytes", "t_ms",
                "offset_in_message", "bytes", "attempt", "resent_after_ms")  # fmt: skip
STREAM_COLUMNS = ("block", "direction", "messages", "segments", "dropped", "dropped_acks")


def packet_log(rows: list, requests: list, answers: list) -> pd.DataFrame:
    """The relay's packet log rows as a table (``PACKET_COLUMNS``, direction as a name) with
    each segment placed in its message: ``message`` (index in its block's stream, -1 past the
    last one listed), ``exchange`` (the message's exchange id) and ``message_bytes``.
    ``requests`` / ``answers``: per block, the client's / server's (exchange id, bytes) in
    stream order."""
    log = pd.DataFrame(rows, columns=list(PACKET_COLUMNS))
    message = np.full(len(log), -1, dtype=np.int64)
    exchange, size = message.copy(), np.zeros(len(log), dtype=np.int64)
    for b in range(len(requests)):
        for d, messages in enumerate((requests[b], answers[b])):
            at = np.flatnonzero((log["block"].to_numpy() == b) & (log["direction"].to_numpy() == d))
            if not len(messages) or not len(at):
                continue
            sizes = np.array([m[1] for m in messages], dtype=np.int64)
            k = np.searchsorted(np.cumsum(sizes), log["offset"].to_numpy()[at], side="right")
            ok = k < len(messages)
            message[at[ok]] = k[ok]
            exchange[at[ok]] = np.array([m[0] for m in messages], dtype=np.int64)[k[ok]]
            size[at[ok]] = sizes[k[ok]]
    log["direction"] = [DIRECTIONS[d] for d in log["direction"]]
    return log.assign(message=message, exchange=exchange, message_bytes=size)


def place_drops(log: pd.DataFrame, requests: list, answers: list, relay_blocks: list | None = None
                ) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """``(losses, streams)`` of one session from its placed packet log (``packet_log``).
    ``requests`` / ``answers`` as there; ``relay_blocks``: the relay's counters per block (its
    ``dropped`` counts every packet, so the pure ACKs lost are the difference to the data
    segments lost)."""
    losses, streams = [], []
    for b in range(len(requests)):
        for d, messages in enumerate((requests[b], answers[b])):
            way = DIRECTIONS[d]
            seg = log[(log["block"] == b) & (log["direction"] == way)]
            t, off, n = (seg[c].to_numpy() for c in ("t_ms", "offset", "bytes"))
            start = np.concatenate([[0], np.cumsum([m[1] for m in messages])])
            drops = np.flatnonzero(seg["dropped"].to_numpy())
            for i in drops:
                o, k = off[i], int(seg["message"].iat[i])
                covers = (off <= o) & (off + n > o)
                later = np.flatnonzero(covers & (t > t[i]))
                losses.append((b, way, k, int(seg["exchange"].iat[i]), int(seg["message_bytes"].iat[i]),
                               float(t[i]), int(o - start[k]) if k >= 0 else -1, int(n[i]),
                               int(np.count_nonzero(covers[:i])),
                               float(t[later[0]] - t[i]) if len(later) else float("nan")))  # fmt: skip
            acks = 0
            if relay_blocks is not None and b < len(relay_blocks):
                acks = relay_blocks[b][way]["dropped"] - len(drops)
            streams.append((b, way, len(messages), len(seg), len(drops), acks))
    return pd.DataFrame(losses, columns=LOSS_COLUMNS), pd.DataFrame(streams, columns=STREAM_COLUMNS)


def loss_script(losses: pd.DataFrame, block: int, direction: str, messages: int,
                packet_payload: int) -> list[tuple[list[int], int]]:  # fmt: skip
    """A block's losses in ``direction`` as the simulator replays them (``Link.script``): per
    message in send order, the packet positions of its lost first transmissions (its segments
    being ``packet_payload`` bytes, the simulator's ``mtu - packet_header``) and its count of
    lost resends. Drops placed beyond the ``messages`` listed are ignored."""
    out: list[tuple[list[int], int]] = [([], 0) for _ in range(messages)]
    sel = losses[(losses["block"] == block) & (losses["direction"] == direction)]
    for k, off, attempt in zip(sel["message"], sel["offset_in_message"], sel["attempt"]):
        if 0 <= k < messages:
            first, resent = out[k]
            if attempt == 0:
                first.append(int(off) // packet_payload)
            else:
                out[k] = (first, resent + 1)
    return out


def segment_kind(losses: pd.DataFrame) -> pd.Series:
    """Where each dropped segment sat in its message: ``single`` (the whole message was one
    segment), ``tail`` (the last segment of a longer message: nothing behind it to trigger
    fast recovery) or ``inner``."""
    whole = losses["offset_in_message"].eq(0) & (losses["bytes"] >= losses["message_bytes"])
    last = (losses["offset_in_message"] + losses["bytes"]) >= losses["message_bytes"]
    return pd.Series(np.where(whole, "single", np.where(last, "tail", "inner")), index=losses.index)


def message_times(log: pd.DataFrame) -> pd.DataFrame:
    """Per message of a placed packet log (``packet_log``; grouped by the columns it has of
    ``point``, ``policy``, ``block``, ``direction``, ``message``): ``first_in_ms``, when its
    first segment reached the relay (the sender's send, give or take the testbed's kernel
    path), ``delivered_ms``, when the relay had delivered every byte of it at least once (its
    arrival at the receiver's kernel; a resend of a byte already delivered does not count),
    and its ``segments`` and ``dropped`` counts (resends included), and ``first_burst``: how many
    of its segments' first transmissions reached the relay within ``BURST_MS`` of its first
    segment, i.e. were sent back to back (at most the sender's window when the message began)."""
    keys = [c for c in ("point", "policy", "block", "direction", "message") if c in log.columns]
    log = log[log["message"] >= 0]
    g = log.groupby(keys, sort=False)
    first = g.agg(first_in_ms=("t_ms", "min"), segments=("bytes", "size"), dropped=("dropped", "sum"))
    ok = log[log["dropped"] == 0]
    done = ok.groupby([*keys, "offset"], sort=False)["out_ms"].min().groupby(keys, sort=False).max()
    sends = log.drop_duplicates([*keys, "offset"])  # first transmissions (the log is in time order)
    start = sends.groupby(keys, sort=False)["t_ms"].transform("min")
    burst = sends[sends["t_ms"] <= start + BURST_MS].groupby(keys, sort=False).size()
    return first.join(done.rename("delivered_ms")).join(burst.rename("first_burst")).reset_index()
