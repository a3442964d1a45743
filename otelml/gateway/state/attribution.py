"""Slices of each profiled series by trace attributes: what drift attribution re-reads.

For every (model, series) a model attributes, one cumulative count matrix
(keys × value slots × buckets) over the same buckets as the series' distribution: the
observations the distribution counted, split by the value each trace attribute (a
`service.version`, an `http.route`, a tenant) had on the record they came from. Values are
bounded per model and key: the first `values` seen keep a slot, later ones share
`__other__`, records without the attribute count in `__unset__`; so each key's slots sum to
the distribution's counts. None of it is exposed by itself: the drift engine windows it and
exposes the few slices that explain a drift. Memory: keys × (values + 2) × buckets × 8 bytes
per series, plus one exemplar slot (40 bytes) per (key, value).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from otelml import semconv
from otelml.gateway.state.exemplars import Exemplars
from otelml.gateway.state.keys import AttributionSettings, ModelKey, ModelProfile, SeriesKey
from otelml.gateway.state.observations import Binned, Origin

#: Unattributed models remembered (a cache: matching them again is cheap).
_MAX_REMEMBERED_OFF = 4096


class SliceEntry(NamedTuple):
    """What one series' distribution counted of a request, and its number of buckets."""

    series: SeriesKey
    buckets: int
    binned: Binned


class SliceValues:
    """One model's value slots per key: slot `capacity` is __other__, `capacity + 1` __unset__."""

    def __init__(self, settings: AttributionSettings) -> None:
        self.settings = settings
        self.capacity = settings.values
        self.values: list[list[str]] = [[] for _ in settings.keys]
        self._slot: list[dict[str, int]] = [{} for _ in settings.keys]
        # The last request's slots per record, reused by every series of that request.
        self._request: tuple[Origin, npt.NDArray[np.intp], npt.NDArray[np.intp]] | None = None

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_request": None}  # a request's cache does not travel

    @property
    def slots(self) -> int:
        return self.capacity + 2

    def name(self, key: int, slot: int) -> str:
        if slot == self.capacity:
            return semconv.ATTRIBUTION_OTHER
        if slot == self.capacity + 1:
            return semconv.ATTRIBUTION_UNSET
        return self.values[key][slot]

    def slot_of(self, key: int, value: str) -> int:
        slot = self._slot[key].get(value)
        if slot is None:
            if len(self.values[key]) >= self.capacity:
                return self.capacity
            slot = self._slot[key][value] = len(self.values[key])
            self.values[key].append(value)
        return slot

    def present(self, origin: Origin) -> npt.NDArray[np.intp]:
        """The keys some record of the last `per_record` request carries."""
        assert self._request is not None and self._request[0] is origin
        return self._request[2]

    def per_record(self, origin: Origin, strings: list[str]) -> npt.NDArray[np.intp]:
        """(keys, records): each record's slot per key; computed once per request."""
        if self._request is not None and self._request[0] is origin:
            return self._request[1]
        records = len(origin.trace_id)
        out = np.full((len(self.settings.keys), records), self.capacity + 1, dtype=np.intp)
        present: list[int] = []
        for k, key in enumerate(self.settings.keys):
            if key not in origin.context_keys:
                continue
            codes = origin.context[:, origin.context_keys.index(key)]
            carried = codes >= 0
            if not carried.any():
                continue
            uniques, inverse = np.unique(codes[carried], return_inverse=True)
            table = np.fromiter(
                (self.slot_of(k, strings[c]) for c in uniques.tolist()), np.intp, len(uniques)
            )
            out[k, carried] = table[inverse]
            present.append(k)
        carrying = np.asarray(present, dtype=np.intp)
        self._request = (origin, out, carrying)
        return out

    def mapping(self, other: SliceValues, key: int) -> npt.NDArray[np.intp]:
        """Where each of `other`'s slots of `key` goes among this model's slots (by name)."""
        mapping = np.arange(other.slots)
        for slot, value in enumerate(other.values[key]):
            mapping[slot] = self.slot_of(key, value)
        return mapping


class SliceCounts:
    """One series' counts per (attribute key, value slot, bucket), cumulative."""

    def __init__(self, keys: int, slots: int, buckets: int) -> None:
        self.counts = np.zeros((keys, slots, buckets), dtype=np.int64)
        #: Slices with an observation (once all are, nothing needs checking any more).
        self.filled: npt.NDArray[np.bool_] = np.zeros((keys, slots), dtype=bool)
        #: The latest observation of each slice, at index key * slots + slot.
        self.exemplars = Exemplars(keys * slots)

    def offer_exemplars(self, binned: Binned, slots: npt.NDArray[np.intp], origin: Origin) -> None:
        """Refresh the slices' exemplars at most every `Exemplars.refresh_s`, but always
        when a slice gets its first observation. `slots`: (keys, records) from `per_record`."""
        filled = np.asarray(self.counts.any(axis=2))
        if (filled & ~self.filled).any():
            self.filled = filled  # a slice got its first observation: it gets its exemplar
        elif not self.exemplars.due():
            return
        keys, n_slots, _ = self.counts.shape
        index = np.arange(keys)[:, None] * n_slots + slots[:, binned.record]
        self.exemplars.record(
            index.ravel(), np.tile(binned.value, keys), np.tile(binned.record, keys), origin
        )

    def merge(self, other: SliceCounts, mappings: list[npt.NDArray[np.intp]]) -> None:
        n_slots = self.counts.shape[1]
        for k, mapping in enumerate(mappings):
            np.add.at(self.counts[k], mapping, other.counts[k])
            source = np.arange(k * n_slots, (k + 1) * n_slots)
            targets = k * n_slots + mapping
            newer = other.exemplars.time_s[source] > self.exemplars.time_s[targets]
            for name in ("trace_id", "span_id", "value", "time_s"):
                mine, theirs = getattr(self.exemplars, name), getattr(other.exemplars, name)
                mine[targets[newer]] = theirs[source[newer]]
        self.filled = np.asarray(self.counts.any(axis=2))

    def nbytes(self) -> int:
        ex = self.exemplars
        return int(
            self.counts.nbytes
            + ex.trace_id.nbytes
            + ex.span_id.nbytes
            + ex.value.nbytes
            + ex.time_s.nbytes
        )


class SliceStore:
    """The slice counts of every attributed series, keyed like the feature store."""

    def __init__(self, models: list[ModelProfile] | None = None) -> None:
        self.models = [m for m in models or [] if m.attribution is not None]
        keys: dict[str, None] = {}
        for model in self.models:
            assert model.attribution is not None
            keys.update(dict.fromkeys(model.attribution.keys))
        #: Every key any model attributes by: what the decoder keeps per record.
        self.context_keys: tuple[str, ...] = tuple(keys)
        self.values: dict[ModelKey, SliceValues] = {}
        self._series: dict[tuple[ModelKey, SeriesKey], SliceCounts] = {}
        self._off: set[ModelKey] = set()

    def model_values(self, model: ModelKey) -> SliceValues | None:
        """The model's value slots (None: the model is not attributed)."""
        found = self.values.get(model)
        if found is not None or model in self._off or not self.models:
            return found
        match = next((m for m in self.models if m.matches(model)), None)
        if match is None or match.attribution is None or model.segment is not None:
            if len(self._off) >= _MAX_REMEMBERED_OFF:
                self._off.clear()  # a stream of fresh model names must not grow this set
            self._off.add(model)
            return None
        found = self.values[model] = SliceValues(match.attribution)
        return found

    def observe(
        self, model: ModelKey, entries: list[SliceEntry], strings: list[str], origin: Origin
    ) -> None:
        """One request's counted observations of a model, every series at once: one gather
        and one bincount over all of them (per-series numpy calls would cost more)."""
        values = self.model_values(model)
        if values is None or not entries:
            return
        slots = values.per_record(origin, strings)
        keys, n_slots = len(values.settings.keys), values.slots
        targets = []
        for entry in entries:
            counts = self._series.get((model, entry.series))
            if counts is None:
                counts = SliceCounts(keys, n_slots, entry.buckets)
                self._series[(model, entry.series)] = counts
            targets.append(counts)
        # Columns: every series' buckets side by side; rows: the (key, slot) slices.
        widths = np.array([e.buckets for e in entries])
        starts = np.cumsum(widths) - widths
        total = int(widths.sum())
        lengths = [len(e.binned.bucket) for e in entries]
        record = np.concatenate([e.binned.record for e in entries])
        column = np.repeat(starts, lengths) + np.concatenate([e.binned.bucket for e in entries])
        rows = keys * n_slots
        added = np.zeros((rows, total), dtype=np.int64)
        present = values.present(origin)
        if len(present):
            slice_of_record = present[:, None] * n_slots + slots[present]
            flat = slice_of_record[:, record] * total + column
            added += np.bincount(flat.ravel(), minlength=rows * total).reshape(rows, total)
        if len(present) < keys:
            # A key no record carries: the whole request is its __unset__ slice.
            absent = np.setdiff1d(np.arange(keys), present)
            added[absent * n_slots + n_slots - 1] += np.bincount(column, minlength=total)
        for target, start, entry in zip(targets, starts.tolist(), entries, strict=True):
            block = added[:, start : start + entry.buckets]
            target.counts += block.reshape(keys, n_slots, entry.buckets)
            target.offer_exemplars(entry.binned, slots, origin)

    def get(self, model: ModelKey, series: SeriesKey) -> SliceCounts | None:
        return self._series.get((model, series))

    def items(self) -> Iterator[tuple[tuple[ModelKey, SeriesKey], SliceCounts]]:
        return iter(list(self._series.items()))

    def merge(self, other: SliceStore) -> None:
        """Slots by value name, so workers that saw values in another order agree."""
        mappings: dict[ModelKey, list[npt.NDArray[np.intp]]] = {}
        for model, theirs in other.values.items():
            mine = self.model_values(model)
            if mine is not None:
                keys = range(len(theirs.settings.keys))
                mappings[model] = [mine.mapping(theirs, k) for k in keys]
        for (model, series), counts in other._series.items():
            if model not in mappings:
                continue
            target = self._series.get((model, series))
            if target is None:
                target = self._series[(model, series)] = SliceCounts(*counts.counts.shape)
            target.merge(counts, mappings[model])

    def nbytes(self) -> int:
        """Memory held by the slice counts (what `keys × values × buckets` costs)."""
        return sum(c.nbytes() for c in self._series.values())
