#!/usr/bin/env python3
"""Prints, as one JSON object keyed by path, the MIME tree Python's email package reads
from each message given on the command line: content type, decoded file name, children.

python_crosscheck.rs compares it with postcell-mime's tree. Where the RFCs leave the
reading of a broken message to the parser, Python's tree is brought to the rule the crate
documents, each marked below; everything else is Python's own reading.
"""

import email
import json
import re
import sys
from email import policy
from email.header import decode_header, make_header

IDENTITY = {"7bit", "8bit", "binary"}
# Python 3.11 keeps a comment after the subtype in the content type ("text/plain (a
# comment)"); a comment is CFWS (RFC 2045 section 5.1), so it is dropped here.
COMMENT = re.compile(r"\s*\([^()]*\)")


def filename(part):
    name = part.get_filename()
    if name is None:
        return None
    name = str(name)
    if "=?" in name:
        # Encoded words in a quoted parameter (not RFC 2047, but common): both decode.
        name = str(make_header(decode_header(name)))
    return name


def tree(part):
    content_type = COMMENT.sub("", part.get_content_type())
    maintype = part.get_content_maintype()
    cte = str(part.get("Content-Transfer-Encoding", "7bit")).strip().lower()
    node = {"type": content_type, "filename": filename(part), "parts": []}
    if maintype == "multipart" and not part.is_multipart():
        # Rule: a multipart whose parts cannot be found (no boundary) is text/plain.
        node["type"] = "text/plain"
        return node
    if maintype == "message" and cte not in IDENTITY:
        # Rule: an encoded message cannot be sliced into parts: application/octet-stream.
        node["type"] = "application/octet-stream"
        return node
    if content_type == "message/delivery-status":
        # Python splits its field groups into pseudo-messages; for MIME it is one leaf.
        return node
    if part.is_multipart():
        node["parts"] = [tree(child) for child in part.get_payload()]
    return node


def main():
    result = {}
    for path in sys.argv[1:]:
        with open(path, "rb") as message:
            parsed = email.message_from_binary_file(message, policy=policy.default)
        result[path] = tree(parsed)
    json.dump(result, sys.stdout, ensure_ascii=False, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
