"""A pure-Python iSCSI initiator (RFC 7143, error recovery level 0).

The sans-I/O protocol core takes bytes and returns events and bytes to send; it
imports no sockets and no threads: :mod:`~tapepath.iscsi.pdu` (the PDU codec),
:mod:`~tapepath.iscsi.text`, :mod:`~tapepath.iscsi.chap`, :mod:`~tapepath.iscsi.login`
(the login state table) and :mod:`~tapepath.iscsi.session` (command state).

The I/O driver around it lives in :mod:`~tapepath.iscsi.sockio`,
:mod:`~tapepath.iscsi.connection` and :mod:`~tapepath.iscsi.driver`
(:class:`~tapepath.iscsi.driver.IscsiSession`, ``discover_targets``);
:mod:`~tapepath.iscsi.url` parses ``iscsi://`` URLs. Most programs use the transport,
``tapepath.open_transport("iscsi://host/iqn/lun")``. This package imports nothing on
purpose, so importing the core never pulls in sockets or threads.
"""
