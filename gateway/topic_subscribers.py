"""A topic's subscriber registry: who is subscribed, with which filter, and who gets which frame.

``Subscribers`` files each subscriber of one topic (``gateway.topic.Topic``) by the rows its
filter selects in the current frame's layout: viewers whose filters select the same rows share
a ``Bucket`` (and so one frame), whole-router viewers share ``every``. It joins, leaves and
narrows subscribers and sorts them again when the interface set changes (``rebucket``); the
topic walks the buckets to publish. No I/O and no awaiting here: the topic writes the frames.
"""

from __future__ import annotations

from typing import Final

from gateway.core.filters import InterfaceFilter
from gateway.core.rows import Layout, Selection
from gateway.sink import Sink

__all__ = ["Bucket", "Subscribers"]

# The filter of a whole-router subscription (equal to, and hashing as, any other such filter).
_EVERY: Final = InterfaceFilter.all()


class Bucket:
    """Subscribers that get the same frame: those of every filter that selects the same rows
    (or of the whole router). ``plain`` take plain frames; ``packed`` agreed to
    permessage-deflate (None until the first such joins: most buckets have none).

    Dicts used as ordered sets: a dense table is about half the memory of a set's sparse one
    at 10,000 members, and quicker to walk.
    """

    __slots__ = ("packed", "plain")

    def __init__(self) -> None:
        self.plain: dict[Sink, None] = {}
        self.packed: dict[Sink, None] | None = None

    def add(self, sink: Sink) -> None:
        if not sink.deflate:
            self.plain[sink] = None
        elif self.packed is None:
            self.packed = {sink: None}
        else:
            self.packed[sink] = None

    def discard(self, sink: Sink) -> bool:
        """Take ``sink`` out; whether it was in."""
        members = self.packed if sink.deflate else self.plain
        if members is None or sink not in members:
            return False
        del members[sink]
        return True

    def __contains__(self, sink: Sink) -> bool:
        members = self.packed if sink.deflate else self.plain
        return members is not None and sink in members

    def __bool__(self) -> bool:
        return bool(self.plain) or bool(self.packed)


class _Filter:
    """One distinct filter of the topic's subscribers: the filter (one object for all of
    them: each subscribe made its own equal one), how many use it, and the rows it selects in
    the layout of the current frame (None before the first frame)."""

    __slots__ = ("filter", "selection", "users")

    def __init__(self, flt: InterfaceFilter) -> None:
        self.filter = flt
        self.users = 0
        self.selection: Selection | None = None


class Subscribers:
    """One topic's subscribers, filed for publishing (owned by the topic: it alone calls
    ``join``, ``leave``, ``narrow`` and ``rebucket``)."""

    __slots__ = ("_distinct", "buckets", "every", "filters", "layout")

    def __init__(self) -> None:
        # Those of the whole router are in ``every``; each other one is in ``filters`` (its
        # filter's record) and in the bucket of the rows its filter selects in ``layout`` (the
        # current frame's), so a tick walks one bucket per distinct selection (whatever the
        # number of distinct filters) and each viewer costs what a whole-router viewer does.
        # The buckets are sorted again when the interface set changes (``rebucket``). A
        # filter's record goes with its last subscriber, a bucket with its last member.
        self.every = Bucket()
        self.filters: dict[Sink, _Filter] = {}
        self._distinct: dict[InterfaceFilter, _Filter] = {}
        self.buckets: dict[Selection, Bucket] = {}
        self.layout: Layout | None = None

    def __contains__(self, sink: Sink) -> bool:
        return sink in self.filters or sink in self.every

    def join(self, sink: Sink, flt: InterfaceFilter) -> None:
        """File ``sink`` with the subscribers of ``flt`` (see ``buckets``)."""
        if flt.is_all:
            self.every.add(sink)
            return
        record = self._distinct.get(flt)
        if record is None:
            record = self._distinct[flt] = _Filter(flt)
            if self.layout is not None:
                record.selection = self.layout.select(flt)
        record.users += 1
        self.filters[sink] = record
        if record.selection is not None:
            self._bucket(record.selection).add(sink)

    def leave(self, sink: Sink) -> bool:
        """Take ``sink`` out of wherever ``join`` filed it; False if it was not there."""
        record = self.filters.pop(sink, None)
        if record is None:
            return self.every.discard(sink)
        selection = record.selection
        if selection is not None:
            bucket = self.buckets[selection]
            bucket.discard(sink)
            if not bucket:
                del self.buckets[selection]
        record.users -= 1
        if not record.users:
            del self._distinct[record.filter]
        return True

    def narrow(self, sink: Sink, flt: InterfaceFilter) -> bool:
        """Narrow a subscriber's filter to what also passes ``flt``; False if ``sink`` is not
        subscribed."""
        record = self.filters.get(sink)
        if record is None and sink not in self.every:
            return False
        current = _EVERY if record is None else record.filter
        narrowed = current.intersect(flt)
        if narrowed != current:
            self.leave(sink)
            self.join(sink, narrowed)
        return True

    def _bucket(self, selection: Selection) -> Bucket:
        bucket = self.buckets.get(selection)
        if bucket is None:
            bucket = self.buckets[selection] = Bucket()
        return bucket

    def rebucket(self, layout: Layout) -> None:
        """A frame with another interface set (the first frame, or churn): select each
        filter's rows anew and sort the filtered subscribers into the new buckets."""
        self.layout = layout
        for record in self._distinct.values():
            record.selection = layout.select(record.filter)
        self.buckets = {}
        for sink, record in self.filters.items():
            assert record.selection is not None  # just selected
            self._bucket(record.selection).add(sink)
