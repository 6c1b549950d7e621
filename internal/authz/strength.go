package authz

import (
	"fmt"
	"unicode/utf8"
)

// MinAdminTokenLength is the shortest EASYMAIL_ADMIN_TOKEN accepted.
const MinAdminTokenLength = 32

// CheckStrength returns an error naming the variable when the operator token given in it is obviously
// weak: shorter than MinAdminTokenLength characters, one repeated character, fewer than 8 different
// characters, a repeated phrase (fewer than three quarters of its 4-character runs differ), or mostly an
// alphabet or keyboard sequence (most neighbours one code point apart). Random output such as
// `openssl rand -hex 32` or a generated em_ token always passes.
func CheckStrength(variable, token string) error {
	weak := func(format string, args ...any) error {
		return fmt.Errorf("%s is too weak: %s; set at least %d random characters, e.g. the output of `openssl rand -hex 32`",
			variable, fmt.Sprintf(format, args...), MinAdminTokenLength)
	}
	if !utf8.ValidString(token) {
		return fmt.Errorf("%s is not valid UTF-8", variable)
	}
	r := []rune(token)
	if len(r) < MinAdminTokenLength {
		return weak("it is %d characters long", len(r))
	}
	distinct := map[rune]bool{}
	for _, c := range r {
		distinct[c] = true
	}
	switch {
	case len(distinct) == 1:
		return weak("it is one character repeated")
	case len(distinct) < 8:
		return weak("it uses only %d different characters", len(distinct))
	}
	grams := map[string]bool{}
	for i := 0; i+4 <= len(r); i++ {
		grams[string(r[i:i+4])] = true
	}
	if n := len(r) - 3; len(grams)*4 < n*3 {
		return weak("it repeats itself (%d of its %d 4-character runs differ)", len(grams), n)
	}
	steps := 0
	for i := 1; i < len(r); i++ {
		if d := r[i] - r[i-1]; d >= -1 && d <= 1 {
			steps++
		}
	}
	if steps*10 > (len(r)-1)*7 {
		return weak("it is mostly a sequence (%d of %d neighbouring characters are one apart)", steps, len(r)-1)
	}
	return nil
}
