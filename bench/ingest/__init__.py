"""Ingest throughput benchmark: parkflow against a real Mosquitto and a real InfluxDB.

Run from the repository root with the project's virtualenv::

    python -m bench.ingest --quick        # small N, under a minute with set-up
    python -m bench.ingest                # 100k single / 500k batch readings, about 1-2 min
    python -m bench.ingest --wait-quiet 60 --repeat 3     # on a shared machine, see below
    python -m bench.ingest --mqtt-port 1883 --influx-url http://127.0.0.1:8086   # your servers

Without ``--mqtt-port`` / ``--influx-url`` the bench starts its own ``mosquitto`` (the
data-safety settings of deploy/mosquitto/parkflow.conf) and ``influxd`` (1.x, fsync on every
write) on free loopback ports in temporary directories through tests/support, and removes them
at the end. Every phase writes to a database of its own, dropped at the end (``--keep`` keeps
them); MQTT sessions it leaves on an external broker are deleted. Child processes are stopped
on success, failure, Ctrl-C and SIGTERM (and the ingestor and publishers die with the bench).

Phases, in this order, each alone (``--phases`` picks a subset):

``raw`` (b): InfluxDB's raw write ceiling. The very lines parkflow writes
    (``parkflow.store.influx.lineprotocol.reading_line``), formatted before the clock starts,
    POSTed by one httpx client in 5000-point bodies, one request at a time (like the ingestor's
    single writer). Points/s from the first request to the last answer.
``ceiling`` (a): a bare paho MQTT v5 subscriber process (persistent session, plain
    subscription, manual ack, the ingestor's Receive Maximum) that acks every message the moment
    it arrives and does nothing else. Readings/s from the first to the last message received.
``single`` and ``batch`` (c): parkflow end to end. ``--ingestors`` (default 1) real
    ``python -m parkflow.cli ingest`` processes (PARKFLOW_* tunables from this environment; the
    bench sets the broker, InfluxDB URL, a fresh database, client ids and partitions), ready
    (``/readyz``) and proven subscribed (a probe reading outside the measured range must be
    stored) before publishing starts. ``single``: one reading per message; ``batch``: JSON
    arrays of 100 readings. Readings/s from the first publish until all N readings are visible
    to ``SELECT count(value) FROM reading``.
``paced``: like ``single`` but published at ``--paced-rate`` messages/s (default half the
    single phase's rate), for latency below saturation.
``drain`` (optional, not in the default list): capacity without publishers competing for the
    CPU: N messages are queued for an offline session, then the bare subscriber, and in a second
    round the ingestor, reconnect and take them (steady-state rates and their ratio).

Publishers: ``--publishers`` processes (default 2), paho MQTT v5, QoS 1, asynchronous publishes
with up to ``--window`` unacknowledged messages each (paho's own in-flight limit is set to 0,
unlimited, because with a limit paho rescans every in-flight message on each PUBACK), each
waiting for all its PUBACKs: ``service.simulate.mqtt_client.QoS1Publisher``, the client the
simulator and the test suite's checker publish through, driven by the process's own loop. Readings use the sample registry (park "songlam"): reading k
(0..N-1) has ``seq = k`` and ``ts = T0 + k`` ms with T0 two days ago, so every reading is a
distinct point; messages go round-robin over the park's meters with values inside each meter's
min/max. Publisher p sends the contiguous block of readings p*N/P .. (p+1)*N/P-1 in order.

Latency, publish to stored: each publisher records the monotonic clock when it hands a message
to paho. During the phase the bench polls InfluxDB every ``--poll-interval`` s (default 0.05)
with, per publisher block, ``SELECT count(value) FROM reading WHERE time >= <first incomplete
100 ms bucket> AND time < <end of block> GROUP BY time(100ms)``. As ts encodes k, a 100 ms
bucket is exactly 100 consecutive readings of one publisher (100 single messages, or one
100-reading message), so the rise of a bucket's count between two polls tells how many of them
became visible, and when; they are matched to the bucket's not yet visible readings in publish
order and given the time the poll's answer arrived. Latencies are thus over-estimated by at most
one poll period (``poll_period_ms``, reported), never under-estimated, and blurred only by the
order within a bucket (100 consecutive messages, published within a few ms). In ``single`` and
``batch`` the publishers run at full speed, so the broker's backlog is part of the latency:
those are latencies at saturation and grow with N; ``paced`` gives the latency below it. The
polling costs InfluxDB some CPU (visible as ``influxd`` in ``cpu_s``).

Lost and duplicated: afterwards the bench reads back every stored (meter, ts, seq, value) and
compares with what the broker acknowledged (PUBACK below 0x80). ``lost``: acknowledged
readings not stored; ``duplicated``: stored points beyond one per seq (InfluxDB overwrites a
point with the same series and timestamp, so redelivery is idempotent by design; a duplicate
would be a reading stored under another key); ``unexpected``: stored points nobody sent, or
whose meter, seq or value differ from what was sent; ``redelivered``: the ingestors'
``messages_received`` beyond the messages published.

CPU: each phase reports ``cpu_s`` per process (publishers, subscriber or ingestors, mosquitto,
influxd, the bench itself) and ``others``: what the rest of the machine used meanwhile. The
rates only mean something when ``others`` is small; on a shared machine use ``--wait-quiet S``
(wait up to S s for an idle second before each phase) and ``--repeat R`` (each phase's median
round is reported, every round's rate in ``rounds``). ``cpu_us_per_reading`` (CPU of the
consumer per reading) is much less sensitive to neighbours than the rates.

The last line printed is one JSON object: ``single_ratio`` (parkflow single readings/s over the
ceiling), ``batch_ratio`` (parkflow batch readings/s over InfluxDB's raw points/s), ``lost``,
``duplicated``, ``unexpected`` (sums over every parkflow phase and round), the raw figures,
latencies, N per phase, ``targets_met`` and per-phase ``details``. Targets on 2 cores:
single_ratio >= 0.9, batch_ratio >= 0.5, lost = 0, duplicated = 0. The exit status is 0 unless
the bench itself failed (the targets do not affect it).

Profiling: ``--profile DIR`` runs ``py-spy record`` (``pip install py-spy``) against the first
ingestor of every parkflow phase and writes speedscope files there; ``--profile-mode wall``
samples every thread including waits, ``gil`` only the thread holding the GIL (where the
process's Python CPU goes).

The modules: ``__main__`` (the command line and the phase loop), ``phases`` (the phases by
name), ``context`` (servers, databases, sessions, probe, lost/duplicated check, profiler),
``readings`` (what is sent), ``publishers``, ``subscriber`` (the bare one), ``ingestors``,
``children`` (process supervision), ``cpu``, ``latency`` and ``report``. The servers, the
ingestor harness, the InfluxDB client and the meters come from the test suite's
``tests.support``.
"""
