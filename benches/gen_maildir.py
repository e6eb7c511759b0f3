#!/usr/bin/env python3
"""Generate a maildir of support mail for benchmarking `recoverydesk import-maildir`.

Standard library only. Deterministic for a given --seed, so runs are comparable.

The mix, per 100 messages (approximately):
  44  new requests, spread over every kind the desk classifies (forgot username, IP lockout /
      allowlist, terminated / billing, login / 535 / API key, general)
  33  replies from the requester, threading to an earlier generated message by In-Reply-To and
      References (quoting it, as mail clients do)
   5  stranger replies (someone else answering in an existing thread)
   5  exact duplicates of an earlier message (the MTA delivered it twice)
   8  auto-generated mail: out-of-office replies (Auto-Submitted, X-Autoreply, Precedence)
      answering earlier messages, and a few mailing-list posts
   5  bounces (multipart/report) of earlier customer messages
About 3 % carry an attachment (PDF, PNG or a text log, base64). Bodies are 7bit/8bit plain,
quoted-printable or base64, some with an HTML alternative; sizes run from 1 to 20 KB
(log-uniform). Messages are written to DIR/cur (flags ":2,S") in the order they "arrived", the
last few percent to DIR/new, with file names that sort in arrival order.

With --rich, the "attachments and HTML" corpus: every message sent by a person has an HTML
alternative and 30 % carry an attachment.

Usage: gen_maildir.py [--count N] [--seed S] [--id-prefix P] [--rich] DIR
"""

import argparse
import base64
import email.utils
import math
import os
import quopri
import random
import sys

WORDS = (
    "the a our we you it this that with for on in to of and from at by as be is was are have "
    "has will would could should please thanks thank hello hi team support account service mail "
    "message server domain send sending sent delivery deliveries customer customers yesterday today "
    "morning afternoon week month since after before again still now soon urgent important "
    "campaign newsletter report invoice order shop store website application app integration "
    "setup settings configuration change changed update updated office colleague manager help "
    "question problem issue working stopped suddenly nothing happened error screen page button "
    "click clicked tried trying retry several times number reference ticket case reply answer "
    "wait waiting quick look could check let know regards best kind sincerely"
).split()

FIRST = "Ann Bob Carla Dev Eun Femi Gita Hugo Ines Jon Kofi Lena Mateo Nia Omar Pia Quinn Rosa Sven Tara".split()
LAST = "Adams Berg Costa Diaz Evans Fischer Garcia Hansen Ito Jensen Khan Lopez Moreau Novak Okafor Perez".split()
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.co.uk", "shop.example.de", "acme.test"]

# (subject templates, body openings): words the desk classifies into each kind.
KINDS = {
    "forgot_username": (
        ["Forgot my username", "I forgot my username", "Username reminder please", "What is my username?"],
        ["Hi, I forgot my username for the account registered to this address.",
         "Hello, I cannot remember my username. Could you send it to me?"],
    ),
    "ip_lockout": (
        ["Locked out - IP access", "Please add my IP to the allowlist", "IP address is not allowed",
         "Locked out after moving office"],
        ["Hi, we are locked out: our new office IP address is not on the allowlist.",
         "Hello, since this morning our server IP 203.0.113.{n} is locked out. Please whitelist it."],
    ),
    "account_terminated": (
        ["Account terminated", "Please reactivate my account", "Unpaid invoice - account terminated",
         "Billing question"],
        ["Hi, our account was terminated for an unpaid invoice. We paid yesterday; please reactivate it.",
         "Hello, I received a termination notice about billing. What is the outstanding balance?"],
    ),
    "login_help": (
        ["535 Authentication failed", "Cannot log in", "API key not working", "SMTP authentication failed"],
        ["Hi, our application gets 535 Authentication failed since this morning.\nusername: app-{n}",
         "Hello, I cannot log in to the dashboard and our API key returns an error."],
    ),
    "general": (
        ["Question about my account", "Delivery question", "Hello", "Invoice copy", "Change of contact"],
        ["Hi, a quick question about our account and the delivery reports.",
         "Hello, could you tell me where to find the delivery reports for last month?"],
    ),
}
KIND_WEIGHTS = {"forgot_username": 20, "ip_lockout": 25, "account_terminated": 15, "login_help": 25, "general": 15}

MAX_SIZE = 20 * 1024

HTML_TEMPLATE = "<html><body><div dir=\"ltr\">{}</div></body></html>"


class Generator:
    def __init__(self, seed, id_prefix):
        self.rng = random.Random(seed)
        self.id_prefix = id_prefix
        self.seq = 0
        self.attach_share, self.html_share = 0.03, 0.25
        self.customers = [self.person() for _ in range(3000)]
        self.sent = []  # earlier messages: dicts with from, subject, message_id, body, raw
        self.base_time = 1_767_225_600  # 2026-01-01T00:00:00Z

    # -- pieces --------------------------------------------------------------------------
    def person(self):
        first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
        local = self.rng.choice([f"{first}.{last}", f"{first[0]}{last}", f"{first}{self.rng.randint(1, 999)}"])
        return f"{first} {last}", f"{local.lower()}@{self.rng.choice(DOMAINS)}"

    def message_id(self):
        self.seq += 1
        return f"<{self.id_prefix}.{self.seq}.{self.rng.getrandbits(40):010x}@{self.rng.choice(DOMAINS)}>"

    def date(self, n):
        return email.utils.formatdate(self.base_time + n * 37, localtime=False)

    def sentence(self):
        words = [self.rng.choice(WORDS) for _ in range(self.rng.randint(6, 16))]
        return " ".join(words).capitalize() + "."

    def paragraph(self):
        return " ".join(self.sentence() for _ in range(self.rng.randint(2, 6)))

    def target_size(self):
        """1-20 KB, log-uniform: most mail is small, some is long."""
        return int(math.exp(self.rng.uniform(math.log(1024), math.log(20 * 1024))))

    def filler(self, opening, size, name):
        paragraphs = [opening]
        # The headers take about 600 bytes.
        budget = max(500, size - 600)
        while sum(len(p) + 2 for p in paragraphs) < budget:
            paragraphs.append(self.paragraph())
        paragraphs.append(f"Best regards,\n{name}")
        return "\n\n".join(paragraphs)

    # -- bodies --------------------------------------------------------------------------
    def body_part(self, text):
        """Headers and body of a text/plain part, in one of the common encodings."""
        roll = self.rng.random()
        if roll < 0.6:
            return ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"], text
        if roll < 0.8:
            encoded = quopri.encodestring(text.encode("utf-8")).decode("ascii")
            return ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable"], encoded
        encoded = base64.encodebytes(text.encode("utf-8")).decode("ascii")
        return ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64"], encoded

    def attachment(self):
        kind = self.rng.choice(["pdf", "png", "log"])
        size = self.rng.randint(2_000, 9_000)
        if kind == "log":
            data = "\n".join(
                f"2026-01-0{self.rng.randint(1, 9)} 10:{i % 60:02d}:00 smtp: 535 5.7.8 authentication failed"
                for i in range(size // 60)
            ).encode()
            ctype, name = "text/plain", "smtp.log"
        else:
            header = b"%PDF-1.4\n" if kind == "pdf" else b"\x89PNG\r\n\x1a\n"
            data = header + self.rng.randbytes(size)
            ctype, name = ("application/pdf", "invoice.pdf") if kind == "pdf" else ("image/png", "screenshot.png")
        encoded = base64.encodebytes(data).decode("ascii")
        return [f"Content-Type: {ctype}; name=\"{name}\"", f"Content-Disposition: attachment; filename=\"{name}\"",
                "Content-Transfer-Encoding: base64"], encoded

    def render(self, headers, text, attach=False, html=False):
        part_headers, part_body = self.body_part(text)
        if not attach and not html:
            return "\r\n".join(headers + ["MIME-Version: 1.0"] + part_headers) + "\r\n\r\n" + crlf(part_body)
        boundary = f"=_b{self.rng.getrandbits(48):012x}"
        parts = [(part_headers, part_body)]
        subtype = "mixed" if attach else "alternative"
        if html:
            markup = HTML_TEMPLATE.format("".join(f"<p>{p}</p>" for p in text.split("\n\n")))
            html_part = (["Content-Type: text/html; charset=utf-8", "Content-Transfer-Encoding: quoted-printable"],
                         quopri.encodestring(markup.encode()).decode("ascii"))
            if attach:
                inner = f"=_a{self.rng.getrandbits(48):012x}"
                alternative = multipart("alternative", inner, [parts[0], html_part])
                parts = [([f"Content-Type: multipart/alternative; boundary=\"{inner}\""], alternative)]
            else:
                parts.append(html_part)
        if attach:
            parts.append(self.attachment())
        body = multipart(subtype, boundary, parts)
        return "\r\n".join(headers + ["MIME-Version: 1.0", f"Content-Type: multipart/{subtype}; boundary=\"{boundary}\""]) + "\r\n\r\n" + body

    # -- messages ------------------------------------------------------------------------
    def common(self, n, name, addr, subject, mid):
        return [
            f"Return-Path: <{addr}>",
            f"Received: from mx.{addr.split('@')[1]} (mx.{addr.split('@')[1]} [198.51.100.{n % 250 + 1}]) "
            f"by mail.desk.example with ESMTPS; {self.date(n)}",
            f"From: {email.utils.formataddr((name, addr))}",
            "To: Support <support@desk.example>",
            f"Subject: {subject}",
            f"Date: {self.date(n)}",
            f"Message-ID: {mid}",
        ]

    def new_request(self, n, size):
        kind = self.rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]
        subjects, openings = KINDS[kind]
        name, addr = self.rng.choice(self.customers)
        subject = self.rng.choice(subjects)
        opening = self.rng.choice(openings).format(n=n % 250)
        text = self.filler(opening, size, name)
        mid = self.message_id()
        headers = self.common(n, name, addr, subject, mid)
        raw = self.render(headers, text, attach=self.rng.random() < self.attach_share, html=self.rng.random() < self.html_share)
        return raw, (name, addr, subject, mid, text, raw, [])

    def reply(self, n, size, stranger=False):
        earlier = self.pick_earlier()
        if stranger:
            name, addr = self.rng.choice(self.customers)
        else:
            name, addr = earlier["name"], earlier["from"]
        subject = earlier["subject"] if earlier["subject"].lower().startswith("re:") else "Re: " + earlier["subject"]
        # Mail clients quote the message answered; keep the quote within the size aimed at.
        quoted = "\n".join("> " + line for line in earlier["text"][: size // 2].splitlines())
        opening = self.rng.choice([
            "Thanks, any news on this?",
            "Hello again, I have not heard back yet. Could you check?",
            "Here are the details you asked for.",
            "It is still not working, please have a look.",
        ])
        text = self.filler(opening, size // 2, name) + f"\n\nOn {self.date(n - 1)}, {earlier['name']} wrote:\n" + quoted
        mid = self.message_id()
        references = earlier["references"] + [earlier["message_id"]]
        headers = self.common(n, name, addr, subject, mid) + [
            f"In-Reply-To: {earlier['message_id']}",
            "References: " + " ".join(references[-10:]),
        ]
        raw = self.render(headers, text, attach=self.rng.random() < self.attach_share, html=self.rng.random() < self.html_share)
        return raw, (name, addr, subject, mid, text, raw, references)

    def auto_reply(self, n):
        roll = self.rng.random()
        if roll < 0.8:
            earlier = self.pick_earlier()
            name, addr = earlier["name"], earlier["from"]
            subject = self.rng.choice(["Out of Office: ", "Automatic reply: ", "Auto: "]) + earlier["subject"]
            extra = [self.rng.choice(["Auto-Submitted: auto-replied", "X-Autoreply: yes",
                                      "Precedence: auto_reply", "X-Auto-Response-Suppress: All"]),
                     f"In-Reply-To: {earlier['message_id']}"]
            text = (f"I am out of the office until Monday with limited access to mail. For urgent matters "
                    f"please contact the office.\n\n{name}\n\n" + self.paragraph() + "\n\n" + self.paragraph())
        else:
            name, addr = "Announcements", f"news@{self.rng.choice(DOMAINS)}"
            subject = "Our monthly newsletter"
            extra = ["List-Id: <news.example.com>", "List-Unsubscribe: <mailto:leave@example.com>",
                     "Precedence: bulk"]
            text = self.filler("This month in our newsletter:", min(self.target_size(), 18_000), name)
        mid = self.message_id()
        raw = self.render(self.common(n, name, addr, subject, mid) + extra, text)
        return raw

    def bounce(self, n):
        earlier = self.pick_earlier()
        mid = self.message_id()
        boundary = f"=_r{self.rng.getrandbits(48):012x}"
        headers = [
            "Return-Path: <>",
            f"From: Mail Delivery System <MAILER-DAEMON@mx.{earlier['from'].split('@')[1]}>",
            "To: support@desk.example",
            "Subject: Undelivered Mail Returned to Sender",
            f"Date: {self.date(n)}",
            f"Message-ID: {mid}",
            "Auto-Submitted: auto-replied",
            "MIME-Version: 1.0",
            f"Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"",
        ]
        original_headers = "\r\n".join(earlier["raw"].split("\r\n\r\n", 1)[0].split("\r\n")[:12])
        parts = [
            (["Content-Type: text/plain; charset=us-ascii"],
             "This is the mail system at host mx.example.\r\n\r\nI'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients."),
            (["Content-Type: message/delivery-status"],
             f"Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; {earlier['from']}\r\nAction: failed\r\n"
             "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown"),
            (["Content-Type: text/rfc822-headers"], original_headers),
        ]
        return "\r\n".join(headers) + "\r\n\r\n" + multipart("report", boundary, parts)

    def pick_earlier(self):
        # Recent threads are answered more often than old ones.
        k = len(self.sent)
        i = k - 1 - min(k - 1, int(self.rng.expovariate(1 / 300)))
        return self.sent[i]

    def remember(self, built, size):
        """Keeps a customer message for later replies; rebuilds it smaller when it came out above
        MAX_SIZE (HTML alternatives and attachments add to the text)."""
        raw, record = built(size)
        while len(raw.encode("utf-8")) > MAX_SIZE:
            size = int(size * 0.8)
            raw, record = built(size)
        name, addr, subject, mid, text, raw, references = record
        self.sent.append({"name": name, "from": addr, "subject": subject, "message_id": mid, "text": text,
                          "raw": raw, "references": references})
        return raw

    def message(self, n):
        """The n-th message (bytes), and whether it is a duplicate delivery."""
        size = self.target_size()
        roll = self.rng.random() if len(self.sent) >= 20 else 0.0
        if roll < 0.44:
            return self.remember(lambda s: self.new_request(n, s), size).encode("utf-8"), False
        if roll < 0.77:
            return self.remember(lambda s: self.reply(n, s), size).encode("utf-8"), False
        if roll < 0.82:
            return self.remember(lambda s: self.reply(n, s, stranger=True), size).encode("utf-8"), False
        if roll < 0.87:
            return self.pick_earlier()["raw"].encode("utf-8"), True
        if roll < 0.95:
            return self.auto_reply(n).encode("utf-8"), False
        return self.bounce(n).encode("utf-8"), False


def crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def multipart(subtype, boundary, parts):
    out = [f"This is a multi-part message in MIME format ({subtype}).", ""]
    for headers, body in parts:
        out.append(f"--{boundary}")
        out.extend(headers)
        out.append("")
        out.append(crlf(body).rstrip("\r\n"))
    out.append(f"--{boundary}--")
    out.append("")
    return "\r\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--id-prefix", default="bench", help="makes Message-IDs distinct between maildirs")
    parser.add_argument("--rich", action="store_true", help="HTML on every message, attachments on 30 %%")
    args = parser.parse_args()

    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(args.dir, sub), exist_ok=True)
    gen = Generator(args.seed, args.id_prefix)
    if args.rich:
        gen.attach_share, gen.html_share = 0.30, 1.0
    counts = {"duplicate": 0}
    total_bytes = 0
    sizes = []
    in_new_from = int(args.count * 0.97)
    for n in range(args.count):
        raw, duplicate = gen.message(n)
        counts["duplicate"] += duplicate
        total_bytes += len(raw)
        sizes.append(len(raw))
        folder, suffix = ("new", "") if n >= in_new_from else ("cur", ":2,S")
        name = f"{gen.base_time + n * 37}.M{n:06d}P4242.{args.id_prefix}.desk.example{suffix}"
        with open(os.path.join(args.dir, folder, name), "wb") as f:
            f.write(raw)
    sizes.sort()
    print(
        f"wrote {args.count} messages ({total_bytes / 1e6:.1f} MB; median {sizes[len(sizes) // 2]} bytes, "
        f"min {sizes[0]}, max {sizes[-1]}; {counts['duplicate']} duplicate deliveries) to {args.dir}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
