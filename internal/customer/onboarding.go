package customer

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"easymail/internal/secretfile"
)

// DefaultOnboardingValidity is how long an onboarding link stays valid.
const DefaultOnboardingValidity = 14 * 24 * time.Hour

// OnboardingKeyFile is the name, in the data directory, of the onboarding links' signing key.
const OnboardingKeyFile = "onboarding.key"

// ErrBadOnboardingToken is returned for an onboarding token that is malformed, wrongly signed or expired.
var ErrBadOnboardingToken = errors.New("invalid or expired onboarding link")

// Onboarding signs and verifies onboarding tokens. A token is
// base64url(customerID "." expiry "." hex(HMAC-SHA256(key, customerID "." expiry))), expiry in Unix seconds.
type Onboarding struct {
	key []byte
	// Validity is the lifetime of new links; 0 means DefaultOnboardingValidity.
	Validity time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// LoadOnboarding returns a signer with the key kept in dataDir/onboarding.key, creating the key (32 random
// bytes, mode 0600) at first use.
func LoadOnboarding(dataDir string) (*Onboarding, error) {
	key, err := LoadKey(filepath.Join(dataDir, OnboardingKeyFile))
	if err != nil {
		return nil, fmt.Errorf("onboarding key: %w", err)
	}
	return &Onboarding{key: key}, nil
}

// LoadKey returns the 32-byte signing key kept in the file path, creating it (32 random bytes, mode 0600)
// at first use. The onboarding links and the unsubscribe links (package unsubscribe) each have their own.
func LoadKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createKey(path)
	}
	if err != nil {
		return nil, err
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("%s: %d bytes, want 32", path, len(key))
	}
	return key, nil
}

// createKey writes 32 random bytes to path, complete or not at all (secretfile.Create); if another process
// created path meanwhile, its key is used.
func createKey(path string) ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := secretfile.Create(path, key); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return os.ReadFile(path)
		}
		return nil, err
	}
	return key, nil
}

func (o *Onboarding) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Onboarding) sign(payload string) string {
	m := hmac.New(sha256.New, o.key)
	m.Write([]byte(payload))
	return hex.EncodeToString(m.Sum(nil))
}

// Token returns a fresh token for the customer and its expiry.
func (o *Onboarding) Token(customerID string) (string, time.Time) {
	v := o.Validity
	if v <= 0 {
		v = DefaultOnboardingValidity
	}
	exp := o.now().Add(v).Truncate(time.Second).UTC()
	payload := customerID + "." + strconv.FormatInt(exp.Unix(), 10)
	return base64.RawURLEncoding.EncodeToString([]byte(payload + "." + o.sign(payload))), exp
}

// Link returns a fresh onboarding link: publicURL (scheme and authority, e.g. "https://relay.example.net")
// followed by /onboard/ and a token.
func (o *Onboarding) Link(publicURL, customerID string) OnboardingLink {
	tok, exp := o.Token(customerID)
	return OnboardingLink{URL: strings.TrimRight(publicURL, "/") + "/onboard/" + tok, ExpiresAt: exp}
}

// Verify checks a token's signature and expiry and returns the customer id it was made for.
func (o *Onboarding) Verify(token string) (string, error) {
	id, _, err := o.Check(token)
	return id, err
}

// Check is Verify that also returns the token's expiry.
func (o *Onboarding) Check(token string) (customerID string, expires time.Time, err error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", time.Time{}, ErrBadOnboardingToken
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != 3 || parts[0] == "" {
		return "", time.Time{}, ErrBadOnboardingToken
	}
	payload := parts[0] + "." + parts[1]
	if !hmac.Equal([]byte(parts[2]), []byte(o.sign(payload))) {
		return "", time.Time{}, ErrBadOnboardingToken
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return "", time.Time{}, ErrBadOnboardingToken
	}
	expires = time.Unix(exp, 0).UTC()
	if !o.now().Before(expires) {
		return "", time.Time{}, ErrBadOnboardingToken
	}
	return parts[0], expires, nil
}
