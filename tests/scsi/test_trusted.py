"""The parsers' fast construction path (``_wire.trusted``) and the values it builds.

A parser that skips validators must still only produce values the validators accept:
every parsed value is rebuilt here through the normal, fully validated constructor
(``attrs.evolve`` runs converters and validators again) and must come out equal, with
the same field types.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import pytest
from attrs import field, frozen
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.scsi._wire import trusted, uint_field
from tapepath.scsi.element_descriptor import ElementDescriptor, VolumeTag
from tapepath.scsi.element_status import ElementStatus
from tapepath.scsi.position import PositionExtended, PositionLong, PositionShort
from tapepath.scsi.sense import Sense, decode_sense, fixed_sense
from tapepath.scsi.sense_fields import SenseKey, decode_sks


@frozen
class _Sample:
    required: int = field(validator=uint_field(4))
    optional: int = field(default=3, validator=uint_field(4))


@frozen
class _WithPostInit:
    value: int = 0

    def __attrs_post_init__(self) -> None:
        pass


@frozen
class _WithFactory:
    items: list[int] = field(factory=list)


def _revalidated(value: Any) -> Any:
    """Rebuild an attrs value through its validated constructor (nested values too)."""
    changes = {}
    for a in attrs.fields(type(value)):
        inner = getattr(value, a.name)
        if attrs.has(type(inner)):
            changes[a.name] = _revalidated(inner)
        elif isinstance(inner, tuple) and inner and attrs.has(type(inner[0])):
            changes[a.name] = tuple(_revalidated(i) for i in inner)
    return attrs.evolve(value, **changes)


def _assert_same_as_validated(value: Any) -> None:
    rebuilt = _revalidated(value)
    assert rebuilt == value
    for a in attrs.fields(type(value)):
        assert type(getattr(rebuilt, a.name)) is type(getattr(value, a.name)), a.name


class TestTrustedHelper:
    """trusted() sets fields without checks but refuses what it cannot build faithfully."""

    def test_fields_and_defaults(self) -> None:
        """Given fields are stored, a left-out field takes its default; one per class."""
        assert trusted(_Sample) is trusted(_Sample)
        sample = trusted(_Sample)(required=7)
        assert (sample.required, sample.optional) == (7, 3)
        assert sample == _Sample(7)

    def test_skips_validators(self) -> None:
        """No validator runs: the caller vouches for the range."""
        assert trusted(_Sample)(required=99).required == 99
        with pytest.raises(ValueError, match="required"):
            _Sample(99)

    def test_result_stays_frozen(self) -> None:
        """A value built this way is as immutable as a normal one."""
        sample = trusted(_Sample)(required=1)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            sample.required = 2  # type: ignore[misc]

    def test_missing_required_field(self) -> None:
        """A required field left out is a TypeError."""
        with pytest.raises(TypeError):
            trusted(_Sample)()

    def test_unknown_field(self) -> None:
        """A name that is not a field is a TypeError."""
        with pytest.raises(TypeError):
            trusted(_Sample)(required=1, bogus=2)

    def test_refuses_post_init_and_factories(self) -> None:
        """Classes whose construction does more than set fields are refused."""
        with pytest.raises(TypeError, match="__attrs_post_init__"):
            trusted(_WithPostInit)
        with pytest.raises(TypeError, match="factory"):
            trusted(_WithFactory)


class TestParsedValuesPassValidation:
    """Every parser on the fast path yields values the validated constructor accepts."""

    FORMS: ClassVar[list[tuple[type[Any], int]]] = [
        (PositionShort, 20),
        (PositionLong, 32),
        (PositionExtended, 32),
    ]

    @given(st.binary(min_size=32, max_size=32))
    def test_read_position_forms(self, data: bytes) -> None:
        """The three READ POSITION forms, from arbitrary bytes."""
        for form, length in self.FORMS:
            parsed = form.from_bytes(data[:length])
            _assert_same_as_validated(parsed)
            assert parsed.to_bytes() == form.from_bytes(parsed.to_bytes()).to_bytes()

    @given(st.binary(max_size=120), st.booleans(), st.booleans())
    def test_element_descriptor(self, data: bytes, pvoltag: bool, avoltag: bool) -> None:
        """One element descriptor (with tags, device identifier, partial), arbitrary bytes."""
        try:
            parsed = ElementDescriptor.from_bytes(data, pvoltag=pvoltag, avoltag=avoltag)
        except DecodeError:
            return
        _assert_same_as_validated(parsed)

    @given(st.binary(max_size=600))
    def test_element_status(self, data: bytes) -> None:
        """Whole READ ELEMENT STATUS data, arbitrary bytes."""
        try:
            parsed = ElementStatus.from_bytes(data)
        except DecodeError:
            return
        for descriptor in parsed.descriptors():
            _assert_same_as_validated(descriptor)

    def test_volume_tag(self) -> None:
        """A volume tag parsed from its 36 bytes equals the one built from text."""
        built = VolumeTag.from_text("ABC123L8", 5)
        parsed = VolumeTag.from_bytes(built.to_bytes())
        assert parsed == built
        _assert_same_as_validated(parsed)

    @given(st.binary(min_size=1, max_size=64))
    def test_decode_sense(self, data: bytes) -> None:
        """Fixed and descriptor sense data, arbitrary bytes behind a valid response code."""
        for code in (0x70, 0x71, 0x72, 0x73):
            try:
                parsed = decode_sense(bytes((code,)) + data)
            except DecodeError:
                continue
            assert isinstance(parsed.sense_key, SenseKey)
            _assert_same_as_validated(parsed)

    @given(st.integers(0, 15), st.binary(min_size=3, max_size=3))
    def test_decode_sks(self, key: int, raw: bytes) -> None:
        """Every sense-key-specific variant, arbitrary bytes."""
        sks = decode_sks(key, bytes((raw[0] | 0x80,)) + raw[1:])
        assert sks is not None
        _assert_same_as_validated(sks)

    def test_sense_key_is_the_enum(self) -> None:
        """The fast path stores the sense key as the SenseKey the converter would make."""
        parsed = decode_sense(fixed_sense(SenseKey.MEDIUM_ERROR, 0x11, 0))
        assert parsed.sense_key is SenseKey.MEDIUM_ERROR
        assert parsed == attrs.evolve(parsed)
        assert isinstance(parsed, Sense)
