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

import numpy as np
import numpy.typing as npt

from otelml import semconv
from otelml.gateway.state.exemplars import Exemplars
from otelml.gateway.state.keys import AttributionSettings, ModelKey, ModelProfile, SeriesKey
from otelml.gateway.state.observations import Binned, Origin


class SliceValues:
    """One model's value slots per key: slot `capacity` is __other__, `capacity + 1` __unset__."""

    def __init__(self, settings: AttributionSettings) -> None:
        self.settings = settings
        self.capacity = settings.values
        self.values: list[list[str]] = [[] for _ in settings.keys]
        self._slot: list[dict[str, int]] = [{} for _ in settings.keys]
        # The last request's slots per record, reused by every series of that request.
        self._request: tuple[Origin, npt.NDArray[np.intp], npt.NDArray[np.intp]] | None = None
        self._flat: dict[int, tuple[Origin, npt.NDArray[np.intp]]] = {}

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_request": None, "_flat": {}}  # a request's cache does not travel

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

    def per_record(
        self, origin: Origin, strings: list[str]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """(keys, records): each record's slot per key, and the keys some record carries;
        computed once per request."""
        if self._request is not None and self._request[0] is origin:
            return self._request[1], self._request[2]
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
        return out, carrying

    def flat_index(
        self, origin: Origin, strings: list[str], buckets: int
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Per key and record, the record's slice as a flat index into a (keys, slots, buckets)
        count array, less its bucket; and the keys some record carries. Once per request and
        bucket count."""
        slots, present = self.per_record(origin, strings)
        cached = self._flat.get(buckets)
        if cached is None or cached[0] is not origin:
            offsets = np.arange(len(self.settings.keys))[:, None] * self.slots
            cached = self._flat[buckets] = (origin, (offsets + slots) * buckets)
        return cached[1], present

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

    def observe(
        self,
        binned: Binned,
        slots: npt.NDArray[np.intp],
        present: npt.NDArray[np.intp],
        origin: Origin,
    ) -> None:
        """Add what a distribution counted; `slots`: (keys, records) from `flat_index`,
        `present`: the keys some record of the request carries (the others are all unset)."""
        if len(binned.bucket) == 0:
            return
        keys, n_slots, buckets = self.counts.shape
        unset = n_slots - 1
        first = not self.filled.all()
        if len(present) < keys:
            # Keys the request does not carry: the whole batch is their __unset__ slice.
            absent = np.ones(keys, dtype=bool)
            absent[present] = False
            self.counts[absent, unset] += np.bincount(binned.bucket, minlength=buckets)
        if len(present):
            # slots[present] holds each record's flat slice index times `buckets` already.
            flat = (slots[present][:, binned.record] + binned.bucket[None, :]).ravel()
            self.counts += np.bincount(flat, minlength=self.counts.size).reshape(self.counts.shape)
        # Refreshed at most every `Exemplars.refresh_s`, but always when a slice first fills.
        filled = np.asarray(self.counts.any(axis=2)) if first else self.filled
        if self.exemplars.due() or (first and (filled & ~self.filled).any()):
            every = slots[:, binned.record] // buckets
            self.exemplars.record(
                every.ravel(), np.tile(binned.value, keys), np.tile(binned.record, keys), origin
            )
        self.filled = filled

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
        if found is not None or model in self._off:
            return found
        match = next((m for m in self.models if m.matches(model)), None)
        if match is None or match.attribution is None or model.segment is not None:
            self._off.add(model)
            return None
        found = self.values[model] = SliceValues(match.attribution)
        return found

    def observe(
        self,
        model: ModelKey,
        series: SeriesKey,
        buckets: int,
        binned: Binned,
        strings: list[str],
        origin: Origin,
    ) -> None:
        values = self.model_values(model)
        if values is None:
            return
        counts = self._series.get((model, series))
        if counts is None:
            keys = len(values.settings.keys)
            counts = self._series[(model, series)] = SliceCounts(keys, values.slots, buckets)
        counts.observe(binned, *values.flat_index(origin, strings, buckets), origin)

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
