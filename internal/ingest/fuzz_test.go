package ingest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/medsec/medsec/internal/phd"
)

// FuzzDecodeBundle: a bundle from the network never panics the decoder,
// every refusal is a *phd.Error with a reason, and what decodes encodes
// back to the same messages.
func FuzzDecodeBundle(f *testing.F) {
	good, _ := EncodeBundle([][]byte{{0xd2, 0x84}, []byte("second message")})
	for _, seed := range [][]byte{good, {0x80}, {0x9f, 0x41, 0x00, 0xff}, {0x81, 0x01}, {0xa0}, {}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := DecodeBundle(data)
		if err != nil {
			var pe *phd.Error
			if !errors.As(err, &pe) || pe.Reason == "" {
				t.Fatalf("refusal without a reason: %v", err)
			}
			return
		}
		if len(msgs) == 0 || len(msgs) > MaxBundleMessages {
			t.Fatalf("decoded %d messages", len(msgs))
		}
		again, err := EncodeBundle(msgs)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeBundle(again)
		if err != nil || len(back) != len(msgs) {
			t.Fatalf("round trip: %d → %d messages, %v", len(msgs), len(back), err)
		}
		for i := range msgs {
			if !bytes.Equal(msgs[i], back[i]) {
				t.Fatalf("message %d changed in a round trip", i)
			}
		}
	})
}
