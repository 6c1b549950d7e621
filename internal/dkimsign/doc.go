// Package dkimsign is Easymail's mail authentication: DKIM keys for the customers' domains, DKIM signing
// of accepted messages, key rotation, the live DNS check of the keys' records (KeyRecords, which package
// readiness uses), and DMARC identifier alignment of every message.
//
// Keys. Each customer domain gets an RSA key (2048 bits by default) when it is added; an Ed25519 key
// (RFC 8463) can be added on request, and the domain is then signed twice. Private keys are stored in the
// database (table dkim_keys), not in files: every node of a cluster signs with the same keys and a rotation
// decided by one node applies to all. They are stored encrypted (PKCS#8 PEM sealed with AES-256-GCM) by a
// MasterKey kept outside the database, whose id is recorded with each key; EncryptAtRest encrypts keys an
// earlier version stored plain and refuses keys of another master key, and Rekey re-encrypts every key
// with a new master key. The embedded SQLite database lives in data_dir, which
// Easymail creates with mode 0700, and the node sets the database file to mode 0600; a PostgreSQL database
// is protected by its own access control. The API
// never returns a private key, and a retired key's private key is erased.
//
// Selectors are "em" + year and month of creation ("em202611"), with an "e" for Ed25519 ("em202611e") and
// "-2", "-3", … for a second key in the same month.
//
// Signing. The signing domain (d=) is the header From's domain when the customer has a key for it; for a
// subdomain of a registered domain, it is the registered domain that holds the key (relaxed DMARC alignment,
// RFC 7489 §3.1.1, is satisfied by it). When the From domain has no key of this customer, the envelope
// sender's domain is used (a non-aligned signature still carries the customer's reputation); otherwise the
// message is not signed. Signatures use relaxed/relaxed canonicalization and rsa-sha256 or ed25519-sha256,
// over the header fields RFC 6376 §5.4.1 recommends, the important ones over-signed (listed once more than
// they occur, so that none can be added). A DKIM-Signature the customer's server added is left untouched.
//
// The signature is computed while the message is written to the spool, from the same bytes, so the content
// is read once; the DKIM-Signature fields go into the stored prefix (after Received), so a message is signed
// once, at acceptance, and never again at retries. Keys are cached in memory (parsed once) and reloaded after
// every provisioning change and at each check interval.
//
// Rotation. Rotate creates the next key of each algorithm in state pending. The check loop looks up its
// record (<selector>._domainkey.<domain>); once the record holds the key, the key becomes active and the one
// it replaces retiring; retiring keys are retired after RetireAfter. A pending key whose record is missing
// never replaces an active key whose record verifies; it does replace one whose record is missing too (a DNS
// answer, not a lookup failure), since no valid signature is lost. Rotations start on demand or, with
// RotateEvery, when the active key is that old.
//
// Alignment. Every accepted message is checked for DMARC identifier alignment (RFC 7489 §3.1, relaxed):
// the header From's organizational domain against that of the DKIM d= and that of the envelope sender.
// Organizational domains come from the public suffix list (golang.org/x/net/publicsuffix). The result, with
// the message's bulk markers, is written to the message log off the SMTP reply's path.
package dkimsign
