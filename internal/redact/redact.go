// Package redact masks the values that came from secrets (passwords,
// tokens, header values, secret URLs) in messages built from them: driver
// errors, configuration errors, preflight details.
//
// Only the secret itself is masked, not every occurrence of its text: a
// secret shorter than LongSecret is masked only where it stands as a token
// of its own (not inside a longer word), so that a one-character password
// does not scrub that letter from "dial tcp". A longer secret is masked
// wherever it appears: inside a word it is still the secret, not chance.
package redact

import (
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Mask replaces a secret.
const Mask = "*****"

// LongSecret is the length from which a secret is masked anywhere.
const LongSecret = 8

// Redactor masks a fixed set of secrets. The zero value and nil mask
// nothing.
type Redactor struct {
	secrets []string // longest first
}

// New returns a Redactor for secrets; each is also matched in its URL
// escaped forms (secrets reach messages inside DSNs and URLs).
func New(secrets ...string) *Redactor {
	var all []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		all = append(all, s, url.QueryEscape(s), url.PathEscape(s))
	}
	// Longest first (see String); equal lengths in order, so that Compact
	// drops every repeat, not only those the length sort put side by side.
	slices.SortFunc(all, func(a, b string) int {
		if d := len(b) - len(a); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return &Redactor{secrets: slices.Compact(all)}
}

// String returns s with every secret masked, longest first, so that a
// secret containing another is never left half visible.
func (r *Redactor) String(s string) string {
	if r == nil || s == "" {
		return s
	}
	for _, sec := range r.secrets {
		s = mask(s, sec)
	}
	return s
}

func mask(s, sec string) string {
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, sec)
		if i < 0 {
			break
		}
		end := i + len(sec)
		if len(sec) >= LongSecret || standsAlone(rest, i, end) {
			b.WriteString(rest[:i])
			b.WriteString(Mask)
		} else {
			b.WriteString(rest[:end])
		}
		rest = rest[end:]
	}
	if b.Len() == 0 {
		return s
	}
	b.WriteString(rest)
	return b.String()
}

// standsAlone reports whether s[i:end] is not part of a longer word: a
// word character of the match's edge must not touch another outside it.
func standsAlone(s string, i, end int) bool {
	first, _ := utf8.DecodeRuneInString(s[i:])
	last, _ := utf8.DecodeLastRuneInString(s[:end])
	if i > 0 && isWord(first) {
		if before, _ := utf8.DecodeLastRuneInString(s[:i]); isWord(before) {
			return false
		}
	}
	if end < len(s) && isWord(last) {
		if after, _ := utf8.DecodeRuneInString(s[end:]); isWord(after) {
			return false
		}
	}
	return true
}

func isWord(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }
