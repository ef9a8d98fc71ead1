"""Product identification guides (docs/guides.md): what a rights holder tells customs about
one product (a GTIN, or every GTIN under a GS1 company prefix) so an officer can tell the
genuine article from a fake — pure domain code, no web framework, database or chain.

- `model`: the guide's content and its checks; its category (CBP's, mapped to the EU's);
- `workflow`: draft → submitted → reviewed → published, and when officers may rely on it;
- `history`: what changed between two versions;
- `imports`: bulk CSV / JSON files, all or nothing, with line-numbered errors;
- `images`: photos checked from their bytes, re-encoded, stripped of metadata;
- `pdf`: the printable guide with its confidentiality notice.
"""
