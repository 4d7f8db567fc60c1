package phd

import (
	"strings"
	"testing"
)

// FuzzParseMessageID: a message id from a device, a gateway's queue or an
// operator either is refused or is the id whose String is the input in
// lower case, and that String reads back as the same id.
func FuzzParseMessageID(f *testing.F) {
	id, err := NewMessageID()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{id.String(), "00112233445566778899aabbccddeeff", strings.ToUpper(id.String()), id.String()[:31],
		id.String() + "0", id.String() + "00", " " + id.String(), "0x" + id.String()[2:], (MessageID{}).String(), ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseMessageID(s)
		if err != nil {
			return
		}
		if id.String() != strings.ToLower(s) {
			t.Fatalf("ParseMessageID(%q) = %s", s, id)
		}
		if again, err := ParseMessageID(id.String()); err != nil || again != id {
			t.Fatalf("%s reads back as %s, %v", id, again, err)
		}
	})
}
