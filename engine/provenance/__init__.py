"""Provenance that other software reads (Django-free): IPTC's DigitalSourceType in XMP and a
C2PA manifest (Content Credentials) signed with the site's certificate, written into each
stored PNG, and read back from any uploaded picture.

- `credentials`: the site's signing certificate and key (made once, or an operator's).
- `png_chunks`: PNG chunk surgery (XMP in, manifest out) without re-encoding pixels.
- `xmp`: the XMP packet and reading DigitalSourceType back.
- `signing`: a record's claim → a signed PNG.
- `presence`: whether a file carries a manifest at all (an import keeps such a file).
- `reading`: any picture → what its carriers say (C2PA, XMP, recipe chunks) and its pixels.
"""
