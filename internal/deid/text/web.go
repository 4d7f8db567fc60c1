package text

import (
	"net/netip"
	"strings"
)

// findEmails finds addresses of the form local@domain.tld.
func findEmails(d *doc, out []Finding) []Finding {
	s := d.s
	for off := 0; ; {
		k := strings.IndexByte(s[off:], '@')
		if k < 0 {
			return out
		}
		at := off + k
		off = at + 1
		lo := at
		for lo > 0 && isLocalPart(s[lo-1]) {
			lo--
		}
		hi := at + 1
		for hi < len(s) && isHostByte(s[hi]) {
			hi++
		}
		hi = trimHostEnd(s, at+1, hi)
		if lo < at && validHost(s[at+1:hi]) {
			out = append(out, Finding{Kind: Email, Start: lo, End: hi, Confidence: 0.97})
			off = hi
		}
	}
}

func isLocalPart(c byte) bool {
	return c < 0x80 && (isWordByte(c) || strings.IndexByte("._%+-", c) >= 0)
}

func isHostByte(c byte) bool {
	return c < 0x80 && (isWordByte(c) || c == '.' || c == '-')
}

func trimHostEnd(s string, lo, hi int) int {
	for hi > lo && (s[hi-1] == '.' || s[hi-1] == '-') {
		hi--
	}
	return hi
}

// validHost wants at least two labels and a top-level label of letters.
func validHost(h string) bool {
	dot := strings.LastIndexByte(h, '.')
	if dot <= 0 || len(h)-dot-1 < 2 {
		return false
	}
	for _, c := range []byte(h[dot+1:]) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

var urlStarts = []string{"https://", "http://", "ftp://", "www."}

// findURLs finds web addresses that start with a scheme or "www.".
func findURLs(d *doc, out []Finding) []Finding {
	for _, p := range urlStarts {
		for off := 0; ; {
			k := strings.Index(d.lower[off:], p)
			if k < 0 {
				break
			}
			lo := off + k
			hi := urlEnd(d.s, lo+len(p))
			off = max(hi, lo+1)
			if !boundedLeft(d.s, lo, "./") || hi-lo <= len(p)+3 {
				continue
			}
			host := d.s[lo+len(p) : hi]
			if p != "www." {
				host = strings.TrimPrefix(host, "www.")
			}
			if i := strings.IndexAny(host, "/:?#"); i >= 0 {
				host = host[:i]
			}
			if validHost(host) || p == "www." && strings.Contains(host, ".") || isIP(host) {
				out = append(out, Finding{Kind: URL, Start: lo, End: hi, Confidence: 0.97})
			}
		}
	}
	return out
}

// urlEnd runs to white space or a character that cannot be in a URL, then
// drops trailing punctuation that belongs to the sentence.
func urlEnd(s string, i int) int {
	for i < len(s) {
		c := s[i]
		if c <= ' ' || c >= 0x80 || strings.IndexByte(`<>"'{}[]|\^`+"`", c) >= 0 {
			break
		}
		i++
	}
	for i > 0 && strings.IndexByte(".,;:!?)]", s[i-1]) >= 0 {
		i--
	}
	return i
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// findIPs finds IPv4 dotted quads and IPv6 addresses.
func findIPs(d *doc, out []Finding) []Finding {
	s := d.s
	for i := 0; i < len(s); i++ {
		if !isHexByte(s[i]) && s[i] != ':' || !boundedLeft(s, i, ".:") {
			continue
		}
		if f, ok := ipv4At(d, i); ok {
			out = append(out, f)
			i = f.End
			continue
		}
		if f, ok := ipv6At(s, i); ok {
			out = append(out, f)
			i = f.End
			continue
		}
		for i+1 < len(s) && isWordByte(s[i+1]) && s[i+1] < 0x80 {
			i++
		}
	}
	return out
}

func isHexByte(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func ipv4At(d *doc, i int) (Finding, bool) {
	s := d.s
	j := i
	for part := 0; part < 4; part++ {
		if part > 0 {
			if j >= len(s) || s[j] != '.' {
				return Finding{}, false
			}
			j++
		}
		e := digitRunEnd(s, j)
		if e == j || e-j > 3 || atoi(s[j:e]) > 255 || e-j > 1 && s[j] == '0' {
			return Finding{}, false
		}
		j = e
	}
	if !boundedRight(s, j, "") || j+1 < len(s) && s[j] == '.' && isDigit(s[j+1]) {
		return Finding{}, false
	}
	conf := 0.9
	if b := d.before(i, 12); strings.HasSuffix(trimTail(b, ""), "v") || strings.Contains(b, "version") {
		conf = 0.3 // a version number, not a host
	}
	return Finding{Kind: IP, Start: i, End: j, Confidence: conf}, true
}

func ipv6At(s string, i int) (Finding, bool) {
	j := i
	colons := 0
	for j < len(s) && (isHexByte(s[j]) || s[j] == ':' || s[j] == '.') {
		if s[j] == ':' {
			colons++
		}
		j++
	}
	for j > i && (s[j-1] == '.' || s[j-1] == ':' && !strings.HasSuffix(s[i:j], "::")) {
		if s[j-1] == ':' {
			colons--
		}
		j--
	}
	cand := s[i:j]
	if len(cand)-colons < 3 || colons < 2 || !strings.Contains(cand, "::") && colons < 5 || !boundedRight(s, j, "") {
		return Finding{}, false
	}
	a, err := netip.ParseAddr(cand)
	if err != nil || !a.Is6() {
		return Finding{}, false
	}
	return Finding{Kind: IP, Start: i, End: j, Confidence: 0.9}, true
}
