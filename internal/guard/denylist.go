package guard

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
)

// DenyList holds SHA-256 digests of files known to be malicious.
type DenyList struct {
	digests map[[32]byte]string // digest -> the comment that named it
}

// ParseDenyList reads one hex SHA-256 digest per line. "#" starts a
// comment, whole-line or after the digest; the trailing comment is kept as
// the label reported with a match. Blank lines are ignored.
func ParseDenyList(r io.Reader) (*DenyList, error) {
	d := &DenyList{digests: make(map[[32]byte]string)}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		if err := d.addLine(sc.Text()); err != nil {
			return nil, fmt.Errorf("deny list line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read deny list: %w", err)
	}
	return d, nil
}

func (d *DenyList) addLine(line string) error {
	entry, label, _ := strings.Cut(line, "#")
	entry = strings.TrimSpace(entry)
	if entry == "" {
		return nil
	}
	var sum [32]byte
	if len(entry) != 64 {
		return fmt.Errorf("want 64 hex digits, got %d characters", len(entry))
	}
	if _, err := hex.Decode(sum[:], []byte(entry)); err != nil {
		return fmt.Errorf("not a hex SHA-256 digest: %w", err)
	}
	d.digests[sum] = strings.TrimSpace(label)
	return nil
}

// LoadDenyList reads a deny list file.
func LoadDenyList(path string) (*DenyList, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open deny list: %w", err)
	}
	defer f.Close()
	return ParseDenyList(f)
}

// Len is the number of digests on the list.
func (d *DenyList) Len() int {
	if d == nil {
		return 0
	}
	return len(d.digests)
}

// lookup reports whether sum is denied, with its label.
func (d *DenyList) lookup(sum [32]byte) (string, bool) {
	if d == nil {
		return "", false
	}
	label, ok := d.digests[sum]
	return label, ok
}
