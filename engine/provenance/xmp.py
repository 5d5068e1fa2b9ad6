"""The XMP packet every stored picture carries: IPTC's DigitalSourceType, which search engines
and marketplaces read to label AI-generated pictures (no certificate needed)."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

IPTC_SOURCE_TYPES = "http://cv.iptc.org/newscodes/digitalsourcetype/"
# Text to image: made by a trained model from a prompt alone.
TRAINED_ALGORITHMIC_MEDIA = IPTC_SOURCE_TYPES + "trainedAlgorithmicMedia"
# img2img and inpainting: a model's output combined with a picture someone supplied.
COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA = (
    IPTC_SOURCE_TYPES + "compositeWithTrainedAlgorithmicMedia"
)

_IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"


def xmp_packet(*, digital_source_type: str, creator_tool: str) -> str:
    """A minimal XMP packet: the IPTC digital source type and the tool that made the picture.
    Fixed text for fixed inputs (no dates, no ids), so PNG bytes stay deterministic."""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        f'<rdf:RDF xmlns:rdf="{_RDF}">'
        '<rdf:Description rdf:about=""'
        f' xmlns:Iptc4xmpExt="{_IPTC_EXT}" xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        f" Iptc4xmpExt:DigitalSourceType={quoteattr(digital_source_type)}"
        f" xmp:CreatorTool={quoteattr(creator_tool)}/>"
        "</rdf:RDF></x:xmpmeta>"
        '<?xpacket end="r"?>'
    )


def digital_source_type(xmp: str) -> str | None:
    """The IPTC DigitalSourceType an XMP packet states (as an attribute or an element), or None.
    Hostile XML (entity expansion, external entities) reads as no statement."""
    start, end = xmp.find("<x:xmpmeta"), xmp.rfind("</x:xmpmeta>")
    body = xmp[start : end + len("</x:xmpmeta>")] if 0 <= start < end else xmp
    try:
        root = ElementTree.fromstring(body)
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        return None
    name = f"{{{_IPTC_EXT}}}DigitalSourceType"
    for element in root.iter():
        if name in element.attrib:
            return str(element.attrib[name]).strip() or None
        if element.tag == name:
            resource = element.attrib.get(f"{{{_RDF}}}resource")
            return (resource or element.text or "").strip() or None
    return None


__all__ = [
    "COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA",
    "TRAINED_ALGORITHMIC_MEDIA",
    "digital_source_type",
    "xmp_packet",
]
