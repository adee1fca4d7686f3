"""SCSI codecs: CDB builders, response parsers, sense decoding and classification.

Nothing here does I/O: every function takes and returns bytes or values.
"""
