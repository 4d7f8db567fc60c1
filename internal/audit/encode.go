package audit

import (
	"bytes"
	"encoding/json"
	"time"
	"unicode/utf8"
)

// appendBody appends the JSON of e with index 0, byte for byte what
// json.Marshal writes for it, without reflection: every audited access
// encodes one event. It reports false for what it leaves to json.Marshal
// to encode or reject: a year outside 0-9999 or a Decision that is not
// valid JSON.
func appendBody(b []byte, e *Event) ([]byte, bool) {
	if y := e.Time.Year(); y < 0 || y > 9999 {
		return b, false
	}
	b = append(b, `{"index":0,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendField(b, "actor", e.Actor, false)
	b = appendField(b, "role", e.Role, true)
	b = appendField(b, "action", e.Action, false)
	b = appendField(b, "purpose", e.Purpose, true)
	b = appendField(b, "patient", e.Patient, true)
	b = appendField(b, "resource", e.Resource, true)
	b = appendField(b, "outcome", e.Outcome, false)
	b = appendField(b, "source", e.Source, true)
	b = appendField(b, "reason", e.Reason, true)
	b = appendFlags(b, e.Flags)
	b, ok := appendDecision(b, e.Decision)
	return append(b, '}'), ok
}

func appendField(b []byte, name, v string, omitEmpty bool) []byte {
	if omitEmpty && v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

func appendFlags(b []byte, flags []string) []byte {
	if len(flags) == 0 {
		return b
	}
	b = append(b, `,"flags":[`...)
	for i, f := range flags {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, f)
	}
	return append(b, ']')
}

// appendDecision appends the raw decision as json.Marshal does: compacted,
// with <, >, &, U+2028 and U+2029 escaped. It reports false when the
// decision is not valid JSON.
func appendDecision(b []byte, d json.RawMessage) ([]byte, bool) {
	if len(d) == 0 {
		return b, true
	}
	n := len(b) + len(`,"decision":`)
	out := bytes.NewBuffer(append(b, `,"decision":`...)) // Compact appends to it
	if err := json.Compact(out, d); err != nil {
		return b, false
	}
	b = out.Bytes()
	if !needsHTMLEscape(b[n:]) {
		return b, true
	}
	var esc bytes.Buffer
	json.HTMLEscape(&esc, b[n:])
	return append(b[:n], esc.Bytes()...), true
}

// needsHTMLEscape reports whether s holds <, > or & or may hold U+2028
// or U+2029 (whose UTF-8 starts with the byte 0xE2).
func needsHTMLEscape(s []byte) bool {
	for _, c := range s {
		if c == '<' || c == '>' || c == '&' || c == 0xe2 {
			return true
		}
	}
	return false
}

// appendString appends s as a JSON string, escaped as json.Marshal escapes
// it: quotes, backslashes and control characters, the HTML characters <, >
// and &, U+2028 and U+2029; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if literalASCII(c) {
				i++
				continue
			}
			b = appendEscapedASCII(append(b, s[start:i]...), c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = appendUnicodeEscape(b, r)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func literalASCII(c byte) bool {
	return c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
}

func appendEscapedASCII(b []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\b':
		return append(b, '\\', 'b')
	case '\f':
		return append(b, '\\', 'f')
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	}
	return appendUnicodeEscape(b, rune(c))
}

// appendUnicodeEscape appends \uXXXX in lower-case hex; RuneError stands
// for an invalid byte, written as U+FFFD.
func appendUnicodeEscape(b []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	return append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
}
