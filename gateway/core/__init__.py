"""Pure core: the gateway's decisions as plain functions and values. No I/O, no clocks, no event
loop; time comes in as an argument.

- What a router says: ``text`` (API words as exact text), ``reply`` (a reply's rows from bytes),
  ``model`` (interface rows and samples), ``sources`` (queues, hotspot users, PPP sessions as
  read), ``sessions`` (PPP sessions joined into rows), ``rates`` (rates from counter deltas).
- What viewers get: ``frames`` (traffic frames), ``messages`` (hello, status, error), ``rows``
  (a frame's rows found in its encoding and spliced per filter), ``filters`` (name filters).
- Policy: ``backoff`` (reconnect delays), ``limits`` (token buckets), ``origins`` and
  ``address`` (who the client is), ``once`` (bounded "already reported"), ``cluster`` (cluster
  mode's rules: keys, lease lifetime, seq, which status is newer).

Everything here is tested with plain values and used by the poller, the topics, the websocket
and REST views and the cluster shell; ``tests/gateway/test_layers.py`` keeps it pure.
"""
