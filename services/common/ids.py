"""Opaque ids: ObjectId strings, so they sort by creation time."""

from bson import ObjectId


def new_id() -> str:
    return str(ObjectId())
