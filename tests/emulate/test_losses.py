"""The relay's packet log, placed in application messages (ciarsim.emulate.losses): which
message each dropped segment belonged to, which attempt it was and when it was sent again."""

from __future__ import annotations

import struct

import pandas as pd

from ciarsim.emulate.losses import loss_script, message_times, packet_log, place_drops, segment_kind
from ciarsim.emulate.relay import tcp_segment


def _packet(seq: int, payload: int, flags: int = 0x10) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 32 + payload, 0, 0, 64, 6, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))  # fmt: skip
    tcp = struct.pack("!HHIIBBHHH", 1234, 80, seq, 0, 8 << 4, flags, 0, 0, 0) + bytes(12)
    return ip + tcp + bytes(payload)


def test_tcp_segment_reads_sequence_payload_and_flags():
    assert tcp_segment(_packet(7, 100)) == (7, 100, 0x10)
    assert tcp_segment(_packet(2**32 - 1, 0, 0x02)) == (2**32 - 1, 0, 0x02)
    assert tcp_segment(b"\x60" + bytes(59)) is None  # IPv6
    udp = bytearray(_packet(1, 10))
    udp[9] = 17
    assert tcp_segment(bytes(udp)) is None


# block 0: uplink messages of 3000 and 100 bytes (exchanges 5, 6); downlink one of 50 (5)
REQUESTS, ANSWERS = [[(5, 3000), (6, 100)]], [[(5, 50)]]
ROWS = [  # block, direction, t_ms, out_ms, offset, bytes, dropped
    (0, 0, 0.0, 10.0, 0, 1448, 0),
    (0, 0, 0.0, -1.0, 1448, 1448, 1),  # lost ...
    (0, 0, 0.1, 10.2, 2896, 104, 0),
    (0, 0, 60.0, -1.0, 1448, 1448, 1),  # ... its resend lost too ...
    (0, 0, 300.0, 310.0, 1448, 1448, 0),  # ... the second resend gets through
    (0, 1, 20.0, 30.0, 0, 50, 0),
    (0, 0, 400.0, -1.0, 3000, 100, 1),  # the second message, lost once
    (0, 0, 650.0, 660.0, 3000, 100, 0),
]


def test_drops_are_placed_in_their_messages_with_attempts_and_resend_times():
    log = packet_log(ROWS, REQUESTS, ANSWERS)
    assert log["message"].tolist() == [0, 0, 0, 0, 0, 0, 1, 1]
    assert log["exchange"].tolist() == [5, 5, 5, 5, 5, 5, 6, 6]
    assert log["direction"].tolist()[5] == "downlink"
    blocks = [{"uplink": {"dropped": 3}, "downlink": {"dropped": 2}}]
    losses, streams = place_drops(log, REQUESTS, ANSWERS, blocks)
    assert losses["message"].tolist() == [0, 0, 1]
    assert losses["attempt"].tolist() == [0, 1, 0]
    assert losses["offset_in_message"].tolist() == [1448, 1448, 0]
    assert losses["resent_after_ms"].tolist() == [60.0, 240.0, 250.0]
    s = streams.set_index("direction")
    assert s.loc["uplink", ["messages", "segments", "dropped", "dropped_acks"]].tolist() == [2, 7, 3, 0]
    assert s.loc["downlink", ["messages", "segments", "dropped", "dropped_acks"]].tolist() == [1, 1, 0, 2]


def test_a_drop_never_resent_has_no_resend_time():
    losses, _ = place_drops(packet_log(ROWS[:2], REQUESTS, ANSWERS), REQUESTS, ANSWERS)
    assert losses["resent_after_ms"].isna().all()


def test_loss_script_gives_positions_of_first_losses_and_counts_resends():
    log = packet_log(ROWS, REQUESTS, ANSWERS)
    losses, _ = place_drops(log, REQUESTS, ANSWERS)
    assert loss_script(losses, 0, "uplink", 2, 1448) == [([1], 1), ([0], 0)]
    assert loss_script(losses, 0, "downlink", 1, 1448) == [([], 0)]
    assert loss_script(losses, 0, "uplink", 1, 1448) == [([1], 1)]  # beyond the listed: ignored
    assert loss_script(pd.DataFrame(columns=losses.columns), 0, "uplink", 2, 1448) == [([], 0), ([], 0)]


def test_segment_kind_tells_single_tail_and_inner_segments():
    losses, _ = place_drops(packet_log(ROWS, REQUESTS, ANSWERS), REQUESTS, ANSWERS)
    assert segment_kind(losses).tolist() == ["inner", "inner", "single"]
    tail = losses.iloc[[0]].assign(offset_in_message=2896, bytes=104)
    assert segment_kind(tail).tolist() == ["tail"]


def test_message_times_count_the_first_delivery_of_every_byte():
    m = message_times(packet_log(ROWS, REQUESTS, ANSWERS)).set_index(["direction", "message"])
    assert m.loc[("uplink", 0), ["first_in_ms", "delivered_ms", "segments", "dropped"]].tolist() == [0.0, 310.0, 5, 2]
    assert m.loc[("uplink", 1), ["first_in_ms", "delivered_ms"]].tolist() == [400.0, 660.0]
    # three first transmissions left back to back; the resends and the next message do not count
    assert m.loc[("uplink", 0), "first_burst"] == 3 and m.loc[("uplink", 1), "first_burst"] == 1
    assert m.loc[("downlink", 0), ["first_in_ms", "delivered_ms"]].tolist() == [20.0, 30.0]
    # a spurious resend (the original delivered) does not move the delivery
    spurious = [*ROWS, (0, 1, 200.0, 210.0, 0, 50, 0)]
    m = message_times(packet_log(spurious, REQUESTS, ANSWERS)).set_index(["direction", "message"])
    assert m.loc[("downlink", 0), "delivered_ms"] == 30.0
