package dkimsign

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultRSABits is the RSA key size: RFC 8301 §3.2 wants at least 1024 bits and recommends 2048.
const DefaultRSABits = 2048

// newKey is a freshly generated key pair, not yet stored.
type newKey struct {
	algorithm string
	signer    crypto.Signer
	// privatePEM is the PKCS#8 private key in PEM; public the base64 "p=" value of the record.
	privatePEM string
	public     string
}

// generate makes a key pair of the given algorithm; bits is the RSA size.
func generate(algorithm string, bits int) (*newKey, error) {
	var signer crypto.Signer
	switch algorithm {
	case RSA:
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, fmt.Errorf("dkim: generating an RSA key: %w", err)
		}
		signer = k
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("dkim: generating an Ed25519 key: %w", err)
		}
		signer = k
	default:
		return nil, fmt.Errorf("dkim: unknown key algorithm %q (want %s or %s)", algorithm, RSA, Ed25519)
	}
	der, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		return nil, err
	}
	pub, err := publicValue(signer.Public())
	if err != nil {
		return nil, err
	}
	return &newKey{
		algorithm:  algorithm,
		signer:     signer,
		privatePEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		public:     pub,
	}, nil
}

// publicValue is the "p=" tag of a key record: base64 of the DER SubjectPublicKeyInfo for RSA (RFC 6376
// §3.6.1, as every verifier accepts it), of the raw 32-byte key for Ed25519 (RFC 8463 §4.2).
func publicValue(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(der), nil
	case ed25519.PublicKey:
		return base64.StdEncoding.EncodeToString(k), nil
	}
	return "", fmt.Errorf("dkim: unsupported public key %T", pub)
}

// parsePrivate reads a PKCS#8 PEM private key as stored.
func parsePrivate(s string) (crypto.Signer, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		return nil, errors.New("dkim: stored private key is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("dkim: stored private key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("dkim: stored private key of type %T cannot sign", k)
	}
	return signer, nil
}

// RecordName is the DNS name of a key record: <selector>._domainkey.<domain> (RFC 6376 §3.6.2.1).
func RecordName(selector, domain string) string {
	return selector + "._domainkey." + domain
}

// RecordValue is the TXT record publishing a public key (RFC 6376 §3.6.1). It carries no "t=y" testing flag:
// the keys are meant to be used.
func RecordValue(algorithm, public string) string {
	return "v=DKIM1; k=" + algorithm + "; p=" + public
}

// record is the api form of a key's TXT record.
func record(selector, domain, algorithm, public string) Record {
	return Record{Selector: selector, Name: RecordName(selector, domain), Type: "TXT",
		Value: RecordValue(algorithm, public)}
}

// selectorPrefix starts every selector Easymail makes.
const selectorPrefix = "em"

// newSelector names a new key: "em" and the year and month of its creation ("em202611"), an "e" after that
// for an Ed25519 key ("em202611e"), and "-2", "-3", … when the domain already has that selector (a second
// rotation in the same month). Selectors are DNS labels (RFC 6376 §3.1); dates make old ones easy to spot.
func newSelector(algorithm string, now time.Time, taken func(string) bool) string {
	base := selectorPrefix + now.UTC().Format("200601")
	if algorithm == Ed25519 {
		base += "e"
	}
	s := base
	for n := 2; taken(s); n++ {
		s = fmt.Sprintf("%s-%d", base, n)
	}
	return s
}

// matchRecord reports how the TXT records found at a key's name relate to the key: whether one of them is a
// DKIM key record (RFC 6376 §3.6.1) carrying exactly this public key with a compatible algorithm, and if not,
// why.
func matchRecord(txts []string, algorithm, public string) (bool, string) {
	if len(txts) == 0 {
		return false, "no TXT record"
	}
	var reasons []string
	for _, txt := range txts {
		tags := parseTags(txt)
		if v, ok := tags["v"]; ok && v != "DKIM1" {
			reasons = append(reasons, "not a DKIM1 record")
			continue
		}
		p, ok := tags["p"]
		if !ok {
			reasons = append(reasons, "record has no p= tag")
			continue
		}
		p = strings.Join(strings.Fields(p), "")
		k := tags["k"]
		if k == "" {
			k = RSA // RFC 6376 §3.6.1: k= defaults to rsa
		}
		switch {
		case p == "":
			reasons = append(reasons, "the key is revoked (empty p=)")
		case k != algorithm:
			reasons = append(reasons, "record is for k="+k+", not "+algorithm)
		case p != public:
			reasons = append(reasons, "record holds a different public key")
		default:
			if len(txts) > 1 {
				// RFC 6376 §3.6.2.2: several records give undefined results; verifiers may reject them.
				return false, "several TXT records at this name; keep only the DKIM key record"
			}
			return true, ""
		}
	}
	return false, strings.Join(reasons, "; ")
}

// parseTags splits a tag=value list (RFC 6376 §3.2: tag names are case-sensitive), values trimmed.
func parseTags(s string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out
}
