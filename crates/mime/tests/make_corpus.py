#!/usr/bin/env python3
"""Writes tests/corpus/*.eml, the messages the postcell-mime tests read.

The messages are written by hand below; Python only turns them into octets (CRLF line
ends unless a message says otherwise, charsets, base64). The .eml files are committed:
run this again only to change the corpus, then update the expectations in corpus.rs.

    python3 crates/mime/tests/make_corpus.py
"""

import base64
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def b64(data: bytes) -> bytes:
    return base64.encodebytes(data)


def ew(text: str, charset: str) -> bytes:
    """One RFC 2047 B encoded word."""
    return b"=?" + charset.encode() + b"?B?" + base64.b64encode(text.encode(charset)) + b"?="


MESSAGES = {}

MESSAGES["01-plain.eml"] = crlf(b"""\
Return-Path: <alice@example.org>
Received: from mx.example.org by mail.example.net; Mon, 6 Jan 2025 10:00:00 +0000
Date: Mon, 6 Jan 2025 09:59:58 +0100
From: Alice Example <alice@example.org>
To: Bob <bob@example.net>, carol@example.net
Cc: "Dave, the Third" <dave@example.net>
Subject: Lunch on Friday?
Message-ID: <20250106095958.1234@example.org>
In-Reply-To: <prev-1@example.net>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Hi Bob,

Lunch on Friday at noon?

Alice
""")

PDF = b"%PDF-1.4\n%\xc7\xec\x8f\xa2\n1 0 obj\n<</Type/Catalog>>\nendobj\ntrailer\n<</Root 1 0 R>>\n%%EOF\n"
MESSAGES["02-mixed-attachment.eml"] = crlf(b"""\
From: Alice <alice@example.org>
To: bob@example.net
Subject: Report attached
Date: Tue, 7 Jan 2025 08:00:00 +0000
Message-ID: <report-2@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XyZ-boundary-1"

This is a multi-part message in MIME format.

--XyZ-boundary-1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 7bit

Please find the report attached.
--XyZ-boundary-1
Content-Type: application/pdf; name="report.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="report.pdf"

""" + b64(PDF) + b"""--XyZ-boundary-1--
""")

MESSAGES["03-alternative.eml"] = crlf(b"""\
From: Alice <alice@example.org>
To: Bob <bob@example.net>
Subject: Coffee
Date: Wed, 8 Jan 2025 07:30:00 -0500
Message-ID: <coffee@example.org>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

Caf=C3=A9 au lait
--alt
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

<p>Caf=C3=A9 <b>au lait</b></p>
--alt--
""")

PNG = bytes(range(0x89, 0x89 + 1)) + b"PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(32))
ZIP = b"PK\x03\x04" + bytes(range(40))
MESSAGES["04-nested.eml"] = crlf(b"""\
From: Alice <alice@example.org>
To: Bob <bob@example.net>
Subject: Nested parts
Date: Thu, 9 Jan 2025 12:00:00 +0000
Message-ID: <nested@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="middle"

--middle
Content-Type: text/plain; charset=us-ascii

See the picture.
--middle
Content-Type: multipart/related; boundary="inner"; type="text/html"

--inner
Content-Type: text/html; charset=us-ascii

<img src="cid:logo@example.org"> See the picture.
--inner
Content-Type: image/png
Content-Transfer-Encoding: base64
Content-ID: <logo@example.org>
Content-Disposition: inline

""" + b64(PNG) + b"""--inner--
--middle--
--outer
Content-Type: application/zip; name="files.zip"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="files.zip"

""" + b64(ZIP) + b"""--outer--
""")

MESSAGES["05-rfc822-attachment.eml"] = crlf(b"""\
From: Bob <bob@example.net>
To: Alice <alice@example.org>
Subject: Fwd: Original
Date: Fri, 10 Jan 2025 09:00:00 +0000
Message-ID: <fwd-5@example.net>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="fwd"

--fwd
Content-Type: text/plain; charset=us-ascii

Forwarding this.
--fwd
Content-Type: message/rfc822
Content-Description: Original message

From: Carol <carol@example.net>
To: Bob <bob@example.net>
Subject: Original
Date: Thu, 9 Jan 2025 18:00:00 +0000
Message-ID: <orig@example.net>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="orig"

--orig
Content-Type: text/plain; charset=us-ascii

The original text.
--orig
Content-Type: application/octet-stream; name="data.bin"
Content-Transfer-Encoding: base64

AAECAwQFBgc=
--orig--
--fwd--
""")

JAPANESE = "日本語のテキスト\n"
MESSAGES["06-rfc2231-filename.eml"] = crlf(b"""\
From: Taro <taro@example.jp>
To: Hanako <hanako@example.jp>
Subject: RFC 2231 file name
Date: Sat, 11 Jan 2025 10:00:00 +0900
Message-ID: <rfc2231@example.jp>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b2231"

--b2231
Content-Type: text/plain; charset=us-ascii

A file with a Japanese name.
--b2231
Content-Type: text/plain; charset=utf-8; name*=UTF-8''%E6%97%A5%E6%9C%AC.txt
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt

""" + b64(JAPANESE.encode("utf-8")) + b"""--b2231--
""")

MESSAGES["07-rfc2231-continuations.eml"] = crlf(b"""\
From: Taro <taro@example.jp>
To: Hanako <hanako@example.jp>
Subject: RFC 2231 continuations
Date: Sat, 11 Jan 2025 11:00:00 +0900
Message-ID: <rfc2231-cont@example.jp>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="cont"

--cont
Content-Type: text/plain

Long file names follow.
--cont
Content-Type: application/pdf;
 name*0="very-long-";
 name*1="name.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment;
 filename*0*=UTF-8''%E9%95%B7%E3%81%84;
 filename*1*=%E5%90%8D%E5%89%8D;
 filename*2=".pdf"

""" + b64(PDF) + b"""--cont--
""")

SUBJECT_JA = "日本語の件名"
BODY_JA = "こんにちは、世界。\nテストです。\n"
MESSAGES["08-iso2022jp.eml"] = crlf(b"""\
From: """ + ew("山田太郎", "iso-2022-jp") + b""" <taro@example.jp>
To: hanako@example.jp
Subject: """ + ew(SUBJECT_JA, "iso-2022-jp") + b"""
Date: Sun, 12 Jan 2025 10:00:00 +0900
Message-ID: <iso2022jp@example.jp>
MIME-Version: 1.0
Content-Type: text/plain; charset=ISO-2022-JP
Content-Transfer-Encoding: 7bit

""" + BODY_JA.encode("iso-2022-jp"))

MESSAGES["09-shift-jis.eml"] = crlf(b"""\
From: taro@example.jp
To: hanako@example.jp
Subject: """ + ew("シフトJISの件名", "shift_jis") + b"""
Date: Sun, 12 Jan 2025 11:00:00 +0900
Message-ID: <sjis@example.jp>
MIME-Version: 1.0
Content-Type: text/plain; charset=Shift_JIS
Content-Transfer-Encoding: 8bit

""" + "シフトJISの本文です。\n".encode("shift_jis"))

MESSAGES["10-euc-jp.eml"] = crlf(b"""\
From: taro@example.jp
To: hanako@example.jp
Subject: """ + ew("EUC-JPの件名", "euc-jp") + b"""
Date: Sun, 12 Jan 2025 12:00:00 +0900
Message-ID: <eucjp@example.jp>
MIME-Version: 1.0
Content-Type: text/plain; charset=EUC-JP
Content-Transfer-Encoding: 8bit

""" + "EUC-JPの本文です。\n".encode("euc-jp"))

MESSAGES["11-utf8-encoded-words.eml"] = crlf(b"""\
From: =?UTF-8?Q?Jos=C3=A9_Garc=C3=ADa?= <jose@example.es>
To: "Doe, Jane" <jane@example.com>, =?UTF-8?B?5bGx55Sw?= <yamada@example.jp>
Subject: =?UTF-8?Q?Caf=C3=A9?= =?UTF-8?B?IOaXpeacrA==?=
Date: Mon, 13 Jan 2025 10:00:00 +0100
Message-ID: <ew@example.es>
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: 8bit

""" + "¡Hola! 日本\n".encode("utf-8"))

MESSAGES["12-raw-utf8-headers.eml"] = crlf("""\
From: 山田太郎 <yamada@example.jp>
To: 用户@例子.广告
Subject: 日本語の件名
Date: Mon, 13 Jan 2025 11:00:00 +0900
Message-ID: <utf8@example.jp>
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: 8bit

本文です。
""".encode("utf-8"))

MESSAGES["13-raw-8bit-sjis-header.eml"] = crlf(b"""\
From: """ + "山田".encode("shift_jis") + b""" <yamada@example.jp>
To: hanako@example.jp
Subject: """ + "件名テスト".encode("shift_jis") + b"""
Date: Mon, 13 Jan 2025 12:00:00 +0900
Message-ID: <raw-sjis@example.jp>
MIME-Version: 1.0
Content-Type: text/plain; charset=Shift_JIS
Content-Transfer-Encoding: 8bit

""" + "本文テスト\n".encode("shift_jis"))

MESSAGES["14-group-addresses.eml"] = crlf(b"""\
From: Ann <ann@example.org>
To: undisclosed-recipients:;
Cc: Team: ann@example.org, "Bob B" <bob@example.org>;, carl@example.org
Subject: Groups
Date: Tue, 14 Jan 2025 10:00:00 +0000
Message-ID: <groups@example.org>

Group syntax.
""")

MESSAGES["15-missing-date-msgid.eml"] = crlf(b"""\
From: nobody@example.org
To: somebody@example.org
Subject: No date, no id

Neither Date nor Message-ID, and no MIME fields.
""")

MESSAGES["16-headers-only.eml"] = crlf(b"""\
From: ann@example.org
Subject: headers only
""")

MESSAGES["17-blank-line-body.eml"] = crlf(b"""\
From: ann@example.org
Subject: empty body

""")

MESSAGES["18-base64-qp.eml"] = crlf(b"""\
From: ann@example.org
To: bob@example.org
Subject: Encodings
Date: Wed, 15 Jan 2025 10:00:00 +0000
Message-ID: <enc@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="enc"

--enc
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Soft line br=
eaks, an equals sign =3D and caf=E9.
--enc
Content-Type: application/octet-stream; name="bytes.bin"
Content-Transfer-Encoding: base64

""" + b64(bytes(range(256))) + b"""--enc--
""")

MESSAGES["19-unknown-cte.eml"] = crlf(b"""\
From: ann@example.org
To: bob@example.org
Subject: uuencoded
Date: Wed, 15 Jan 2025 11:00:00 +0000
Message-ID: <uu@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="uu"

--uu
Content-Type: text/plain

The attachment is uuencoded.
--uu
Content-Type: application/octet-stream; name="hi.txt"
Content-Transfer-Encoding: x-uuencode

begin 644 hi.txt
#:&D*
`
end
--uu--
""")

MESSAGES["20-content-fields.eml"] = crlf(b"""\
From: ann@example.org
To: bob@example.org
Subject: Every content field
Date: Thu, 16 Jan 2025 10:00:00 +0000
Message-ID: <fields@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="f"
Content-Language: en
Content-Location: http://example.org/all
Content-Disposition: inline

--f
Content-Type: text/plain; charset=us-ascii
Content-ID: <doc@example.org>
Content-Description: =?UTF-8?Q?D=C3=A9tails?=
Content-Language: en, fr
Content-Location: http://example.org/doc.txt
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==
Content-Disposition: inline; filename="doc.txt"; size=13;
 creation-date="Mon, 6 Jan 2025 10:00:00 +0000"

Details here.
--f--
""")

MESSAGES["21-long-folded.eml"] = crlf(b"""\
From: ann@example.org
To: one@example.org, two@example.org, three@example.org,
 four@example.org, "Five, Esq." <five@example.org>,
\tsix@example.org
Subject: This subject is long enough that it had to be folded over
 several lines by the sending client, which is allowed by RFC 5322
 section 2.2.3
References: <a1@example.org> <a2@example.org>
 <a3@example.org>
 <a4@example.org>
Date: Fri, 17 Jan 2025 10:00:00 +0000
Message-ID:
 <folded@example.org>

Folded.
""")

MESSAGES["22-lf-only.eml"] = b"""\
From: ann@example.org
To: bob@example.org
Subject: Bare line feeds
Date: Sat, 18 Jan 2025 10:00:00 +0000
Message-ID: <lf@example.org>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="lf"

--lf
Content-Type: text/plain; charset=us-ascii

Line one
Line two
--lf
Content-Type: text/html; charset=us-ascii

<p>Line one<br>Line two</p>
--lf--
"""

MESSAGES["23-digest.eml"] = crlf(b"""\
From: list@example.org
To: ann@example.org
Subject: Digest
Date: Sun, 19 Jan 2025 10:00:00 +0000
Message-ID: <digest@example.org>
MIME-Version: 1.0
Content-Type: multipart/digest; boundary="dig"

--dig

From: one@example.org
Subject: First

First message.
--dig

From: two@example.org
Subject: Second
Content-Type: text/plain; charset=us-ascii

Second message.
--dig--
""")

MESSAGES["24-html-only.eml"] = crlf(b"""\
From: shop@example.org
To: ann@example.org
Subject: HTML only
Date: Mon, 20 Jan 2025 10:00:00 +0000
Message-ID: <html@example.org>
MIME-Version: 1.0
Content-Type: text/html; charset=windows-1252
Content-Transfer-Encoding: quoted-printable

<html><body><p>Caf=E9 =80 5</p></body></html>
""")

MESSAGES["25-multipart-no-boundary.eml"] = crlf(b"""\
From: ann@example.org
To: bob@example.org
Subject: Multipart without boundary
Date: Tue, 21 Jan 2025 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed

--what
Content-Type: text/plain

There is no boundary parameter.
--what--
""")

MESSAGES["26-missing-close-delimiter.eml"] = crlf(b"""\
From: ann@example.org
To: bob@example.org
Subject: No closing delimiter
Date: Tue, 21 Jan 2025 11:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="open"

--open
Content-Type: text/plain

First.
--open
Content-Type: text/plain

Second, and the message ends.
""")

MESSAGES["27-preamble-epilogue.eml"] = crlf(b"""\
From: ann@example.org
To: bob@example.org
Subject: Preamble and epilogue
Date: Wed, 22 Jan 2025 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=simple

This is the preamble. It is to be ignored.
--simple   
Content-Type: text/plain

Part one, after a delimiter with transport padding.
--simple
Content-Type: text/plain

Part two.

--simple--
This is the epilogue. It is also to be ignored.
""")

MESSAGES["28-boundary-prefix.eml"] = crlf(b"""\
From: ann@example.org
To: bob@example.org
Subject: Inner boundary starts with the outer one
Date: Wed, 22 Jan 2025 11:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="=_abc"

--=_abc
Content-Type: multipart/alternative; boundary="=_abc_inner"

--=_abc_inner
Content-Type: text/plain

plain
--=_abc_inner
Content-Type: text/html

<p>html</p>
--=_abc_inner--
--=_abc
Content-Type: text/plain

last
--=_abc--
""")

MESSAGES["29-message-rfc822-top.eml"] = crlf(b"""\
From: gateway@example.org
To: ann@example.org
Subject: A whole message as the body
Date: Thu, 23 Jan 2025 10:00:00 +0000
MIME-Version: 1.0
Content-Type: message/rfc822

From: inner@example.org
To: ann@example.org
Subject: Inner
Date: Thu, 23 Jan 2025 09:00:00 +0000

Inner text.
""")

INNER = crlf(b"""\
From: inner@example.org
Subject: Encoded inner

Inner.
""")
MESSAGES["30-encoded-rfc822.eml"] = crlf(b"""\
From: ann@example.org
To: bob@example.org
Subject: message/rfc822 in base64
Date: Thu, 23 Jan 2025 11:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="e"

--e
Content-Type: text/plain

Encoded message attached.
--e
Content-Type: message/rfc822
Content-Transfer-Encoding: base64

""" + b64(INNER) + b"""--e--
""")

MESSAGES["31-part-without-headers.eml"] = crlf(b"""\
From: ann@example.org
To: bob@example.org
Subject: A part with no header
Date: Fri, 24 Jan 2025 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="nh"

--nh

This part has an empty header.
--nh
Content-Type: text/plain

This part has one.
--nh--
""")

MESSAGES["32-sender-replyto.eml"] = crlf(b"""\
From: Boss <boss@example.org>
Sender: Secretary <secretary@example.org>
Reply-To:
To: staff@example.org
Subject: Sender present, Reply-To empty
Date: Fri, 24 Jan 2025 11:00:00 +0000
Message-ID: <sender@example.org>

Body.
""")

MESSAGES["33-no-header-binary.eml"] = b"\x00\x01\x02 binary junk \xff\xfe\r\nsecond line\r\n\r\nthird: line\r\n"

MESSAGES["34-dsn-report.eml"] = crlf(b"""\
From: MAILER-DAEMON@mx.example.org
To: ann@example.org
Subject: Undelivered Mail Returned to Sender
Date: Sat, 25 Jan 2025 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="dsn"

--dsn
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

Your message could not be delivered.
--dsn
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; nobody@example.net
Action: failed
Status: 5.1.1
--dsn
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: ann@example.org
To: nobody@example.net
Subject: Hello
--dsn--
""")

MESSAGES["35-message-global.eml"] = crlf("""\
From: ann@example.org
To: bob@example.org
Subject: message/global attached
Date: Sat, 25 Jan 2025 11:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="g"

--g
Content-Type: text/plain

See the attached internationalised message.
--g
Content-Type: message/global
Content-Transfer-Encoding: 8bit

From: 山田 <山田@例え.jp>
Subject: 国際化メール
Content-Type: text/plain; charset=UTF-8

こんにちは
--g--
""".encode("utf-8"))

MESSAGES["36-quoted-params.eml"] = crlf(b"""\
From: ann@example.org
To: bob@example.org
Subject: Odd parameter syntax
Date: Sun, 26 Jan 2025 10:00:00 +0000
MIME-Version: 1.0
Content-Type: Text/Plain (a comment) ; Charset = "UTF-8" ; format=flowed
Content-Transfer-Encoding: 8BIT

Flowed text.
""")

MESSAGES["37-encoded-word-filename.eml"] = crlf(b"""\
From: ann@example.org
To: bob@example.org
Subject: Encoded word in a file name
Date: Sun, 26 Jan 2025 11:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="ewf"

--ewf
Content-Type: text/plain

Outlook writes file names like this.
--ewf
Content-Type: application/octet-stream; name="=?UTF-8?B?5pel5pys6KqeLnR4dA==?="
Content-Disposition: attachment; filename="=?UTF-8?B?5pel5pys6KqeLnR4dA==?="
Content-Transfer-Encoding: base64

""" + b64("日本語".encode("utf-8")) + b"""--ewf--
""")


def main():
    os.makedirs(CORPUS, exist_ok=True)
    for name, data in sorted(MESSAGES.items()):
        with open(os.path.join(CORPUS, name), "wb") as out:
            out.write(data)
    print(f"wrote {len(MESSAGES)} messages to {CORPUS}")


if __name__ == "__main__":
    main()
