"""Tests of the transport registry."""

from __future__ import annotations

import pytest

import tapepath
from tapepath.errors import TransportUnavailableError, UnknownSchemeError
from tapepath.testing.mock import MockTransport, Request
from tapepath.transport import Response, Transport, register_scheme, registered_schemes


class _Fake(MockTransport):
    @classmethod
    def from_url(cls, url: str) -> Transport:
        def handler(req: Request) -> Response:
            return Response()

        return cls(handler, url=url)


class TestRegistry:
    """open_transport picks a transport by scheme."""

    def test_builtin_schemes_listed(self) -> None:
        """The built-in schemes are known."""
        assert {"sg", "spti", "iscsi", "sim"} <= set(registered_schemes())

    def test_unknown_scheme(self) -> None:
        """An unknown scheme names itself and the known ones."""
        with pytest.raises(UnknownSchemeError, match=r"'nope'.*known: .*iscsi"):
            tapepath.open_transport("nope://x")

    def test_not_a_url(self) -> None:
        """A string without scheme:// is a ValueError."""
        with pytest.raises(ValueError, match="not a transport URL"):
            tapepath.open_transport("/dev/sg0")

    def test_runtime_registration(self) -> None:
        """A scheme registered at run time opens its class."""
        register_scheme("fake", _Fake)
        t = tapepath.open_transport("FAKE://dev")
        assert isinstance(t, _Fake)
        assert t.url == "FAKE://dev"

    def test_unimportable(self) -> None:
        """A scheme whose module is missing gives a clear error naming it."""
        register_scheme("ghost", "tapepath_no_such_module:Ghost")
        with pytest.raises(TransportUnavailableError, match=r"'ghost'.*tapepath_no_such_module"):
            tapepath.open_transport("ghost://x")

    def test_bad_scheme_name(self) -> None:
        """Scheme names are checked."""
        with pytest.raises(ValueError, match="invalid URL scheme"):
            register_scheme("a b", _Fake)
