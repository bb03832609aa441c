"""Places: where something happened and border crossing points."""

from __future__ import annotations

from service.records.fieldtypes import Country, RecordModel, Reference, ShortText


class Place(RecordModel):
    """A place inside a country: the region (oblast, viloyat) and optionally a locality."""

    country: Country
    region: ShortText
    locality: ShortText | None = None


class BorderCrossingPoint(RecordModel):
    """A border crossing point, by name and the country that operates it."""

    name: ShortText
    country: Country
    code: Reference | None = None
